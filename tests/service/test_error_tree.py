"""The one exception tree (tsbandit.errors) and its one mapping to HTTP (service/errors.py)."""

from __future__ import annotations

import inspect

import pytest
from fastapi.testclient import TestClient

import tsbandit.errors as errors_module
from tsbandit.errors import TsbanditError
from tsbandit.service import Settings, create_app

BUILTINS = (ValueError, KeyError, ConnectionError, PermissionError)
STATUSES = {400, 401, 404, 409, 410, 413, 422, 503}


def leaves() -> list[type[TsbanditError]]:
    """Every concrete error class of the tree (the ones with their own code)."""
    out = []
    for _, cls in inspect.getmembers(errors_module, inspect.isclass):
        if issubclass(cls, TsbanditError) and cls is not TsbanditError and "code" in vars(cls):
            out.append(cls)
    return sorted(set(out), key=lambda c: c.__name__)


def test_every_error_lives_in_errors_py_with_a_builtin_base_and_a_unique_code():
    classes = leaves()
    assert len(classes) >= 17
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), codes
    for cls in classes:
        assert cls.__module__ == "tsbandit.errors", cls
        assert issubclass(cls, BUILTINS), f"{cls.__name__} derives from no builtin"
        assert cls.http_status in STATUSES, cls
        assert cls.__name__ in errors_module.__all__
        # the tree in the module docstring names each class with its status and code
        line = next((ln for ln in errors_module.__doc__.splitlines()
                     if f" {cls.__name__} " in ln), "")
        assert str(cls.http_status) in line and cls.code in line, cls.__name__


def test_store_and_service_modules_reexport_the_same_classes():
    from tsbandit.service import errors as service_errors
    from tsbandit.stores import DecisionExistsError, VersionConflictError

    assert DecisionExistsError is errors_module.DecisionExistsError
    assert VersionConflictError is errors_module.VersionConflictError
    for name in ("AuthenticationError", "PayloadTooLargeError", "ArmMismatchError"):
        assert getattr(service_errors, name) is getattr(errors_module, name)


@pytest.mark.parametrize("cls", leaves(), ids=lambda c: c.__name__)
def test_service_maps_each_error_to_its_status_and_code(cls):
    app = create_app(Settings(store="memory://", default_bandit=False))

    @app.get("/raise")
    async def boom() -> None:
        raise cls(f"a {cls.__name__} for the test")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/raise")
    assert r.status_code == cls.http_status
    assert r.json() == {"error": {"code": cls.code, "detail": f"a {cls.__name__} for the test"}}
