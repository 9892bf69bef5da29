"""The package as a user gets it: the wheel and sdist built from this tree, and a core install
(no extras) of the wheel in a fresh virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from tsbandit import __version__

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def test_the_script_without_the_cli_extra_says_which_extra_to_install():
    # typer missing, as in `pip install tsbandit` (no extras): the entry point explains itself
    code = ("import sys; sys.modules['typer'] = None\n"
            "from tsbandit.__main__ import main\nmain()")
    out = _run([sys.executable, "-c", code, "--help"], timeout=60)
    assert out.returncode == 1
    assert "pip install 'tsbandit[cli]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_other_import_errors_are_not_hidden():
    code = ("import sys; sys.modules['tsbandit.cli'] = None\n"
            "from tsbandit.__main__ import main\nmain()")
    out = _run([sys.executable, "-c", code], timeout=60)
    assert out.returncode == 1 and "ModuleNotFoundError" in out.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel: the ones `make test` built into ``$TSBANDIT_TEST_DIST`` (and
    installed), else built here from this tree by `python -m build` (isolated)."""
    given = os.environ.get("TSBANDIT_TEST_DIST")
    if given:
        out = Path(given)
        if not out.is_absolute():
            out = ROOT / out
    else:
        try:
            import build  # noqa: F401
        except ImportError:
            pytest.skip("the build package is not installed (pip install -e '.[dev]')")
        out = tmp_path_factory.mktemp("dist")
        res = _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out),
                    str(ROOT)], timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheel = next(out.glob("tsbandit-*.whl"))
    sdist = next(out.glob("tsbandit-*.tar.gz"))
    return {"wheel": wheel, "sdist": sdist}


def test_the_suite_tests_the_installed_package_when_make_test_runs_it():
    """Under `make test` (which sets TSBANDIT_TEST_DIST) tsbandit is imported from the
    installed wheel, not from this tree's src/."""
    if not os.environ.get("TSBANDIT_TEST_DIST"):
        pytest.skip("not run by `make test` (an editable install imports src/)")
    import tsbandit

    assert ROOT / "src" not in Path(tsbandit.__file__).resolve().parents
    assert "site-packages" in Path(tsbandit.__file__).parts


@pytest.mark.slow
def test_the_wheel_holds_the_package_with_its_typing_marker_and_assets(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    assert "tsbandit/py.typed" in names
    assert "tsbandit/service/static/dashboard.js" in names
    assert "tsbandit/policies/_jit.py" in names
    assert not any(n.startswith("tests/") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dists["wheel"]).read(meta).decode()
    assert "Classifier: Typing :: Typed" in text
    assert "Requires-Python: >=3.10" in text
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tsbandit = tsbandit.__main__:main" in (
        zipfile.ZipFile(dists["wheel"]).read(entry).decode())


@pytest.mark.slow
def test_the_sdist_holds_the_tests_docs_and_benchmarks(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tests_here = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")}
    assert tests_here <= names, sorted(tests_here - names)[:5]
    for doc in ("docs/service.md", "docs/stores.md", "benchmarks/bench_core.py", "Makefile",
                "README.md", "LICENSE", "src/tsbandit/py.typed"):
        assert doc in names
    assert not any("__pycache__" in n for n in names)


@pytest.mark.slow
def test_a_core_install_of_the_wheel_decides_and_explains_its_cli(dists, tmp_path):
    """`pip install tsbandit` with no extras: numpy and scipy only; the library works, the
    script says which extra the command line needs."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    # the fresh environment sees only what it installed (not this tree's sources)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = _run([str(py), "-m", "pip", "install", "--quiet", str(dists["wheel"])], timeout=600,
               env=clean)
    assert res.returncode == 0, res.stderr[-3000:]
    code = ("import tsbandit, importlib.util as u\n"
            "b = tsbandit.ThompsonSamplingBandit(['a', 'b'], seed=0)\n"
            "arm = b.select_arm(); b.update(arm, 1)\n"
            "assert u.find_spec('typer') is None and u.find_spec('fastapi') is None\n"
            "print(tsbandit.__version__, arm in {'a', 'b'})")
    res = _run([str(py), "-c", code], timeout=120, cwd=tmp_path, env=clean)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [__version__, "True"]
    res = _run([str(bindir / "tsbandit"), "--help"], timeout=120, cwd=tmp_path, env=clean)
    assert res.returncode == 1
    assert "pip install 'tsbandit[cli]'" in res.stderr and "Traceback" not in res.stderr
