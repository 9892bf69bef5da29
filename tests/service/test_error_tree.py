"""The one exception tree (tsbandit.errors) and its one mapping to HTTP (service/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import tsbandit.errors as errors_module
from tsbandit.errors import ClientError, TsbanditError
from tsbandit.service import Settings, create_app

BUILTINS = (ValueError, KeyError, ConnectionError, PermissionError)
STATUSES = {400, 401, 404, 409, 410, 413, 422, 503}


def leaves() -> list[type[TsbanditError]]:
    """Every concrete error class of the tree the service answers with (the ones with their
    own code; the client's branch is raised by tsbandit.client only)."""
    out = []
    for _, cls in inspect.getmembers(errors_module, inspect.isclass):
        if (issubclass(cls, TsbanditError) and cls is not TsbanditError and "code" in vars(cls)
                and not issubclass(cls, ClientError)):
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


# ----- every code the service can answer has a row in docs/service.md's error table ---------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def documented_codes() -> set[tuple[int, str]]:
    """(status, code) of every row of the table under '### Errors' in docs/service.md."""
    text = DOCS.read_text()
    section = text[text.index("### Errors"):]
    section = section[:section.index("\n#", 1)]
    out: set[tuple[int, str]] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0][:3].isdigit():
            continue
        statuses = [int(s) for s in re.findall(r"\d{3}", cells[0])]
        codes = re.findall(r"`([a-z_]+)`", cells[1])
        out |= {(s, c) for s in statuses for c in codes}
    return out


def service_error_classes() -> list[type[TsbanditError]]:
    """Every class of the tree once the whole service is imported (all it can raise)."""
    import tsbandit.service

    for mod in pkgutil.iter_modules(tsbandit.service.__path__):
        importlib.import_module(f"tsbandit.service.{mod.name}")

    def walk(cls: type[TsbanditError]) -> list[type[TsbanditError]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *walk(sub))]

    return [c for c in walk(TsbanditError) if "code" in vars(c) and not issubclass(c, ClientError)]


def test_every_error_class_lives_in_errors_py():
    """The one tree: every TsbanditError subclass of the package (service, stores, client...)
    is defined in tsbandit/errors.py and drawn in its docstring."""
    import tsbandit

    for mod in pkgutil.walk_packages(tsbandit.__path__, prefix="tsbandit."):
        importlib.import_module(mod.name)  # every module, so the walk sees every class

    def walk(cls: type[TsbanditError]) -> list[type[TsbanditError]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *walk(sub))]

    for cls in walk(TsbanditError):
        if cls.__module__.startswith("tsbandit."):
            assert cls.__module__ == "tsbandit.errors", cls
            assert re.search(rf"── {cls.__name__}\b", errors_module.__doc__), cls.__name__


def test_the_docs_table_parses():
    rows = documented_codes()
    assert (422, "invalid_request") in rows and (400, "malformed_json") in rows
    assert (404, "not_found") in rows and (405, "method_not_allowed") in rows


@pytest.mark.parametrize("cls", service_error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_a_row_in_the_docs_table(cls):
    assert (cls.http_status, cls.code) in documented_codes(), (
        f"{cls.__name__} ({cls.http_status} {cls.code}) is missing from the error table of "
        "docs/service.md")


def test_every_code_of_the_service_layer_has_a_row_in_the_docs_table():
    from tsbandit.service import errors as service_errors

    rows = documented_codes()
    for status, code in service_errors._HTTP_CODES.items():
        assert (status, code) in rows, (status, code)
    for status, code in [(400, "malformed_json"), (422, "invalid_request"),
                         (500, "internal_error"), (414, "uri_too_long"),
                         (400, "malformed_request")]:
        assert (status, code) in rows, (status, code)
