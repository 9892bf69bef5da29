"""Each worker runs BLAS with ``blas_threads`` threads (tiny matrices: threads only cost)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tsbandit.service import Settings, create_app
from tsbandit.service.threads import BLAS_ENV, blas_env

threadpoolctl = pytest.importorskip("threadpoolctl")


def test_limit_blas_threads_and_restore():
    """In a fresh interpreter, as in a worker: the limit applies to every loaded BLAS (numpy's
    and scipy's OpenBLAS) and is undone by the limiter. (In this test process other tests'
    threads have used BLAS, and OpenBLAS then ignores a limit set from the main thread.)"""
    code = (
        "import threadpoolctl, scipy.linalg\n"
        "from tsbandit.service.threads import limit_blas_threads\n"
        "def n(): return [i['num_threads'] for i in threadpoolctl.threadpool_info()"
        " if i['user_api'] == 'blas']\n"
        "threadpoolctl.threadpool_limits(limits=2, user_api='blas')\n"
        "before = n(); limiter = limit_blas_threads(1); during = n()\n"
        "limiter.restore_original_limits()\n"
        "print(before, during, n(), limit_blas_threads(0))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split("] ")
    before, during, after = (eval_list(x) for x in out[:3])
    assert len(before) >= 1 and during == [1] * len(before) and after == before
    assert out[3].strip() == "None"


def eval_list(text: str) -> list[int]:
    return [int(v) for v in text.strip(" []\n").split(",") if v.strip()]


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
