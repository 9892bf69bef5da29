"""The Open Bandit Dataset check: does off-policy evaluation predict what the other log saw?

The OBD sample holds two logs of the same widget in the same week: one collected by the uniform
``random`` policy and one by Bernoulli Thompson sampling (``bts``). Each log's mean click rate
is an on-policy measurement of its policy, so each direction is a test:

- random -> bts: estimate the BTS policy's click rate from the random log, and compare with the
  bts log's mean. The BTS policy is rebuilt as the Open Bandit Pipeline does: the production
  Beta priors of the campaign (``bts_prior/prior_bts.yaml``), items ranked by one Beta draw
  each, top 3 shown, slot 1 the highest draw; its per-slot distribution by Monte Carlo.
- bts -> random: estimate the uniform policy's click rate from the bts log (propensities from
  1e-6 to 0.96) and compare with the random log's mean.

Run ``python -m tsbandit.evaluation.obd_study [OUT.md] [--obd DIR] [--seed N]`` to print (or
write) the markdown report; :func:`run_study` returns the rows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import LoggedData
from .intervals import Estimate
from .obd import CAMPAIGNS, find_obd_dir, load_obd, load_obd_prior
from .report import evaluate, make_estimators
from .targets import UniformPolicy, thompson_policy

__all__ = ["ESTIMATORS", "SWITCH_TAU", "run_study", "to_markdown"]

#: the estimators of the study; Switch-DR falls back on the model above this weight
ESTIMATORS = ("replay", "ips", "snips", "dm", "dr", "sndr", "switch-dr")
SWITCH_TAU = 10.0


def _z(e: Estimate, truth: Estimate) -> float:
    return (e.value - truth.value) / float(np.hypot(e.std_error, truth.std_error))


def run_study(root: str | Path, *, campaigns: Sequence[str] = CAMPAIGNS, seed: int = 0,
              n_sim: int = 100_000) -> list[dict[str, Any]]:
    """One row per (campaign, direction, estimator), with the other log's on-policy mean."""
    rows: list[dict[str, Any]] = []
    streams = np.random.SeedSequence(seed).spawn(len(campaigns))
    for campaign, ss in zip(campaigns, streams, strict=True):
        rnd, bts = load_obd(root, "random", campaign), load_obd(root, "bts", campaign)
        alpha, beta = load_obd_prior(root, campaign)
        s_fwd, s_rev, s_learn, s_fit = (np.random.Generator(np.random.PCG64(s))
                                        for s in ss.spawn(4))
        bts_policy = thompson_policy(alpha, beta, learn=False, n_sim=n_sim)
        learned = thompson_policy(alpha, beta, learn=True, n_sim=n_sim // 10)
        runs: list[tuple[str, LoggedData, Any, LoggedData, np.random.Generator]] = [
            ("random -> bts", rnd, bts_policy, bts, s_fwd),
            ("bts -> random", bts, UniformPolicy(), rnd, s_rev),
            ("random -> bts, learning on the log", rnd, learned, bts, s_learn),
        ]
        for direction, log, policy, other, rng in runs:
            rep = evaluate(log, policy, estimators=make_estimators(ESTIMATORS, tau=SWITCH_TAU),
                           rng=rng)
            truth = evaluate(other, UniformPolicy(), estimators=[], rng=rng).logged_value
            for e in rep.estimates:
                rows.append({"campaign": campaign, "direction": direction, **e.to_dict(),
                             "truth": truth.value, "truth_low": truth.low,
                             "truth_high": truth.high, "truth_se": truth.std_error,
                             "truth_clicks": truth.n_events, "z": _z(e, truth)})
        pi = bts_policy.action_dist(bts, s_fit)
        pe = pi[np.arange(bts.n_rounds), bts.actions, bts.position_index]
        corr = float(np.corrcoef(np.log(pe + 1e-7), np.log(bts.propensities))[0, 1])
        rows.append({"campaign": campaign, "direction": "propensity check",
                     "estimator": "log-correlation", "value": corr,
                     "median_ratio": float(np.median(pe / bts.propensities))})
    return rows


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.4f}"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The tables of :func:`run_study` as markdown (values in clicks per 100 rows)."""
    out = []
    for campaign in dict.fromkeys(r["campaign"] for r in rows):
        out.append(f"### Campaign `{campaign}`\n")
        for direction in dict.fromkeys(r["direction"] for r in rows
                                       if r["campaign"] == campaign):
            sel = [r for r in rows if r["campaign"] == campaign and r["direction"] == direction]
            if direction == "propensity check":
                r = sel[0]
                out.append(f"Propensity check: the start-of-week BTS reproduces the bts log's "
                           f"propensities with log-correlation {r['value']:.2f}; median ratio "
                           f"(rebuilt / logged) {r['median_ratio']:.2f}.\n")
                continue
            t = sel[0]
            out.append(f"**{direction}** — on-policy truth (the other log's mean): "
                       f"{100 * t['truth']:.3f} [{100 * t['truth_low']:.3f}, "
                       f"{100 * t['truth_high']:.3f}] from {t['truth_clicks']} clicks\n")
            out.append("| estimator | estimate | 95% interval | ESS | events | max weight "
                       "| z vs truth |")
            out.append("|---|---:|---|---:|---:|---:|---:|")
            for r in sel:
                mw = "" if not np.isfinite(r["max_weight"]) else f"{r['max_weight']:.3g}"
                out.append(f"| {r['estimator']} | {_fmt(100 * r['value'])} | "
                           f"[{_fmt(100 * r['low'])}, {_fmt(100 * r['high'])}] | "
                           f"{r['ess']:.0f} | {r['n_events']} | {mw} | {_fmt(r['z'])} |")
            out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tsbandit.evaluation.obd_study [OUT.md] [--obd DIR] [--seed N]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = find_obd_dir()
    seed = 0
    out: str | None = None
    while args:
        a = args.pop(0)
        if a == "--obd":
            root = Path(args.pop(0))
        elif a == "--seed":
            seed = int(args.pop(0))
        else:
            out = a
    if root is None:
        sys.stderr.write("Open Bandit Dataset not found; pass --obd DIR\n")
        return 2
    text = to_markdown(run_study(root, seed=seed))
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
