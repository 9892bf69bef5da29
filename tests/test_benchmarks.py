"""The benchmark scripts stay runnable: each imports (with the shared harness), and the harness
computes what the tables print. Running them is the benchmarks' job (minutes each)."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "harness")


@pytest.fixture(scope="module")
def harness():
    sys.path.insert(0, str(BENCH))
    try:
        import harness

        yield harness
    finally:
        sys.path.remove(str(BENCH))


def test_every_benchmark_imports_and_uses_the_harness() -> None:
    code = ("import importlib, json, sys\n"
            f"sys.path.insert(0, {str(BENCH)!r})\n"
            f"mods = {{n: importlib.import_module(n) for n in {SCRIPTS!r}}}\n"
            "print(json.dumps({n: [hasattr(m, 'main'), 'harness' in vars(m) or any("
            "getattr(v, '__module__', '') == 'harness' for v in vars(m).values())] "
            "for n, m in mods.items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(found) == set(SCRIPTS) and len(SCRIPTS) >= 12
    assert all(main and uses for main, uses in found.values()), found


def test_the_harness_examples(harness) -> None:
    result = doctest.testmod(harness)
    assert result.attempted > 0 and result.failed == 0


def test_alternate_interleaves_and_warms_up(harness) -> None:
    calls: list[str] = []
    samples = harness.alternate([lambda: calls.append("a") or 4, lambda: calls.append("b") or 2],
                                3, per_op=True, before=lambda i: calls.append(f"on{i}"))
    assert calls == ["on0", "a", "on1", "b"] + ["on0", "a", "on1", "b"] * 3
    assert [len(s) for s in samples] == [3, 3] and all(x >= 0 for s in samples for x in s)


def test_percentiles_are_numpys(harness) -> None:
    np = pytest.importorskip("numpy")
    values = list(np.random.default_rng(0).exponential(size=101))
    for q in (50, 90, 99):
        assert harness.percentile(values, q) == pytest.approx(np.percentile(values, q))
    lat = harness.latency([1e-6] * 9 + [1e-3], wall=1.0)
    assert lat["per_s"] == 10 and lat["p50_us"] == pytest.approx(1.0)


def test_tables(harness) -> None:
    table = harness.Table(harness.Col("case", 6, align="<"), harness.Col("us", 6, ".1f"),
                          harness.Col("ratio", 7), sep="  ")
    assert table.header() == "case        us    ratio"
    assert table.row("beta", None, harness.ratio(3.0, 0.0)) == "beta         -        -"
    assert harness.ratio(3.0, 2.0, 1, prefix=True) == "x1.5"
    assert (harness.markdown_header("a", "b", align=["---:"]) + "\n" + harness.markdown_row(1, 2)
            == "| a | b |\n|---:|---|\n| 1 | 2 |")
