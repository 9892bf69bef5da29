"""Each worker runs BLAS with ``blas_threads`` threads (tiny matrices: threads only cost)."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from tsbandit.service import Settings, create_app
from tsbandit.service.threads import BLAS_ENV, blas_env, limit_blas_threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads() -> list[int]:
    import scipy.linalg  # noqa: F401 -- load scipy's BLAS too

    return [i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas"]


def test_limit_blas_threads_and_restore():
    # (OpenBLAS takes the limit from the main thread: where uvicorn runs the lifespan)
    before = _blas_threads()
    limiter = limit_blas_threads(1)
    try:
        assert _blas_threads() == [1] * len(before)
    finally:
        limiter.restore_original_limits()
    assert _blas_threads() == before
    assert limit_blas_threads(0) is None


@pytest.mark.parametrize("n", [1, 3, 0])
def test_lifespan_applies_the_setting_and_undoes_it(monkeypatch, n):
    import tsbandit.service.app as app_module

    calls = []

    class Limiter:
        def restore_original_limits(self) -> None:
            calls.append("restored")

    def spy(k: int):
        calls.append(k)
        return Limiter() if k else None

    monkeypatch.setattr(app_module, "limit_blas_threads", spy)
    with TestClient(create_app(Settings(store="memory://", default_bandit=False,
                                        blas_threads=n))):
        assert calls == [n]
    assert calls == ([n, "restored"] if n else [0])


def test_blas_env_sets_only_what_is_unset(monkeypatch):
    for var in BLAS_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    blas_env(1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"
