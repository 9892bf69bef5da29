"""Issue 15's lock-out of the best feasible arm: how often, and what rules that avoid it cost.

``ConstrainedThompson``'s pessimism zone (``p < 0.05`` fails whatever the draw) is absorbing: an
arm in it gets no data, so a feasible arm pushed there by a few early defaults (the best card of
``tests/policies/mo_world.py``, true risk 0.01, e.g. 3 defaults in its first 12 approvals) never
returns. This script counts lock-outs (best-feasible share of the last 1,000 rounds < 90%) over
many trials for the rule as it is and for variants built on an anytime-valid test of the arm's
own data (``log M``: the likelihood ratio of a risk above the limit against the limit, mixed over
``Beta(1, 1)`` restricted to ``r > L``; by Ville's inequality a feasible arm reaches
``M >= 1 / delta`` with probability <= ``delta`` over the whole run):

* ``zones``: the shipped rule (pool 2, optimism 0.2, pessimism 0.05);
* ``Z(delta)``: fails whatever the draw only once rejected by the test, else as ``zones``;
* ``Y(delta)``: fails once rejected, passes whatever the draw until then (a sequential test,
  no draw for the constraint).

The variants override ``plausible`` on the NumPy path (batched ``explain``), so they run on
``mo_world.simulate`` and on bench_offers_value.py's context-free world (``MetricsLearner``),
not through the compiled kernel.

    python benchmarks/bench_lockout.py [--lanes 60] [--master 10] [--cf-trials 120]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "policies"))

import mo_world

from bench_offers_value import context_free
from harness import load_average
from tsbandit._scipy import betainc, betaln
from tsbandit.lab.value_runner import MetricsLearner
from tsbandit.policies.rules.constrained import ConstrainedThompson


def log_evidence(s: np.ndarray, f: np.ndarray, bound: float = mo_world.LIMIT) -> np.ndarray:
    """``log M`` of a ``max`` bound, mixing prior ``Beta(1, 1)`` restricted to ``r > bound``."""
    a, b = 1.0 + s, 1.0 + f
    with np.errstate(divide="ignore"):
        return (betaln(a, b) - s * np.log(bound) - f * np.log1p(-bound)
                + np.log(betainc(b, a, 1.0 - bound) / betainc(1.0, 1.0, 1.0 - bound)))


class _Variant(ConstrainedThompson):
    """A variant of the zones (set ``mode`` and ``delta`` on the class)."""

    mode = "zones"
    delta = 0.05

    def explain(self, model: Any, posterior: Any, stats: Any, *args: Any, **kw: Any) -> Any:
        object.__setattr__(self, "_stats", stats)
        return super().explain(model, posterior, stats, *args, **kw)

    def plausible(self, model: Any, cpost: Any, contexts: Any, cache: Any = None) -> Any:
        prob = self.pass_probability(model, cpost, contexts)
        if self.mode == "zones":
            return prob >= self.optimism, prob < self.pessimism
        st = self.__dict__["_stats"]
        rej = (log_evidence(st["risk__successes"], st["risk__failures"])
               >= -np.log(self.delta))[None]
        if self.mode == "Y":
            return (prob >= self.optimism) | ~rej, rej
        return prob >= self.optimism, rej


def run(mode: str, delta: float, lanes: int, master: int, cf_trials: int) -> None:
    _Variant.mode, _Variant.delta = mode, delta
    name = mode if mode == "zones" else f"{mode}({delta:g})"
    t0 = time.perf_counter()
    bs, infs = [], []
    for seed in range(0, 100 * master, 100):
        rule = _Variant(({"metric": "risk", "max": mo_world.LIMIT},))
        b, i = _simulate(rule, lanes, seed)
        bs.append(b)
        infs.append(i)
    b, i = np.concatenate(bs), np.concatenate(infs)
    print(f"{name:10s} mo_world {b.size} trials: lock-outs {(b < 0.9).sum()}, best-feasible "
          f"share min {b.min():.3f} mean {b.mean():.3f}; infeasible mean {i.mean():.4f} max "
          f"{i.max():.4f} (> 3%: {(i > 0.03).sum()})", flush=True)
    for seed in (0, 1, 2, 3):
        rule = _Variant(({"metric": "risk", "max": mo_world.LIMIT},))
        ss = np.random.SeedSequence(seed).spawn(3)
        lr = MetricsLearner(mo_world.metric_set(), rule, cf_trials, mo_world.APPLY.shape[0],
                            np.random.default_rng(ss[0]))
        r = context_free({"c": lr}, cf_trials, 3000, seed)["c"]
        b, i = r["best_last"], r["infeasible_share"]
        print(f"{name:10s} bench_offers_value context-free seed {seed} ({cf_trials} trials): "
              f"lock-outs {(b < 0.9).sum()}, best-feasible share min {b.min():.3f}; "
              f"infeasible mean {i.mean():.4f} max {i.max():.4f}", flush=True)
    print(f"{name:10s} {time.perf_counter() - t0:.0f} s", flush=True)


def _simulate(rule: ConstrainedThompson, lanes: int, seed: int) -> tuple[Any, Any]:
    """``mo_world.simulate`` with ``rule`` (its own rule is built from keywords)."""
    orig = mo_world.ConstrainedThompson
    mo_world.ConstrainedThompson = lambda *a, **k: rule
    try:
        return mo_world.simulate(pool=2.0, seeds=lanes, rounds=3000, seed=seed,
                                 optimism=0.2, pessimism=0.05)
    finally:
        mo_world.ConstrainedThompson = orig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", type=int, default=60)
    ap.add_argument("--master", type=int, default=10, help="master seeds 0, 100, ...")
    ap.add_argument("--cf-trials", type=int, default=120)
    ap.add_argument("--variants", nargs="+",
                    default=["zones", "Z:0.05", "Y:0.05", "Y:0.01", "Y:0.005"])
    args = ap.parse_args()
    print(f"load average {load_average()}")
    for v in args.variants:
        mode, _, d = v.partition(":")
        run(mode, float(d or 0.05), args.lanes, args.master, args.cf_trials)
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
