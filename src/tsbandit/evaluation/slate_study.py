"""Slate off-policy evaluation on the Open Bandit Dataset's three positions.

The OBD sample logs single (impression, slot) rows of a 3-slot widget -- not whole slates (its
10,000 rows have nearly as many distinct timestamps) -- under two policies run side by side:
``random`` (3 distinct items of ``m`` uniformly at random: propensity ``1/m`` per slot) and
``bts`` (Bernoulli Thompson sampling; its per-slot propensities are logged). So the slate
estimators run in their single-row forms (:func:`~.slates.per_position_ips_rows`,
:func:`~.slates.pseudo_inverse_rows`) and estimate **clicks per slate** (the three slots'
click rates, summed).

:func:`obd_slate_study` checks and uses them:

1. *on-policy*: each log's own policy as the target (``random``: uniform marginals; ``bts``:
   the logged propensities) -- each estimate must be the log's empirical clicks per slate,
   within its standard error;
2. *cross-log*: the random policy's value estimated from the ``bts`` log, against the
   ``random`` log's empirical value (the two ran in the same week, on the same traffic split);
3. *another target*: the BTS policy of the production priors (``prior_bts.yaml``: one Beta
   draw per item, the top 3 by draw, slot 1 the highest; marginals by Monte Carlo), and the
   deterministic top 3 of the prior means, evaluated on the ``random`` log; the ``bts`` log's
   empirical value is shown beside them (it learned from those priors during the week, so it
   is a reference, not the same policy).

Run ``python -m tsbandit.evaluation.slate_study [--obd DIR] [--seed N]`` for the Markdown
tables of the three campaigns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import LoggedData
from .intervals import Estimate
from .obd import find_obd_dir, load_obd, load_obd_prior
from .slates import per_position_ips_rows, pseudo_inverse_rows, slate_marginals

__all__ = ["bts_marginals", "empirical_clicks_per_slate", "main", "obd_slate_study",
           "to_markdown"]


def empirical_clicks_per_slate(data: LoggedData) -> tuple[float, float]:
    """The log's own clicks per slate (each slot's click rate, summed) and its standard error.

    >>> import numpy as np
    >>> log = LoggedData(np.zeros(4, int), np.array([1.0, 0, 1, 1]), np.ones(4), 1,
    ...                  positions=np.array([0, 0, 1, 1]), n_positions=2)
    >>> empirical_clicks_per_slate(log)[0]
    1.5
    """
    pos = data.position_index
    value, var = 0.0, 0.0
    for j in range(data.n_positions):
        r = data.rewards[pos == j]
        value += float(r.mean())
        var += float(r.var(ddof=1)) / r.shape[0]
    return value, float(np.sqrt(var))


def bts_marginals(alpha: np.ndarray, beta: np.ndarray, n_slots: int,
                  rng: np.random.Generator, n_draws: int = 20_000) -> np.ndarray:
    """Slot marginals ``(L, m)`` of Bernoulli Thompson sampling with Beta(alpha, beta) per item
    (one draw per item, the top ``n_slots`` by draw, best first), by Monte Carlo."""
    draws = rng.beta(alpha, beta, size=(n_draws, alpha.shape[0]))
    top = np.argsort(-draws, axis=1)[:, :n_slots]
    return slate_marginals(top, alpha.shape[0])


def _row(log: str, target: str, est: Estimate, ref: tuple[float, float] | None,
         same_log: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"log": log, "target": target, "estimator": est.estimator,
                           "value": est.value, "std_error": est.std_error, "low": est.low,
                           "high": est.high, "ess": est.ess, "n_events": est.n_events}
    if ref is not None:
        # the same log: the reference is the estimate's own data, so its SE is the yardstick;
        # independent logs: the two standard errors combine
        se = est.std_error if same_log else float(np.hypot(est.std_error, ref[1]))
        out.update(reference=ref[0], reference_se=ref[1],
                   z=(est.value - ref[0]) / se if se > 0 else float("nan"))
    return out


def obd_slate_study(root: str | Path, campaign: str = "all", *, rng: np.random.Generator,
                    n_draws: int = 20_000, level: float = 0.95) -> dict[str, Any]:
    """Run the checks and evaluations of the module docstring on one campaign.

    Returns ``{"empirical": {log: (value, se)}, "rows": [...]}``: one row per (log, target,
    estimator) with the estimate, its standard error and interval, and -- where there is one
    -- the reference value, its standard error and ``z`` (difference over the standard error).
    """
    logs = {b: load_obd(root, b, campaign) for b in ("random", "bts")}
    emp = {b: empirical_clicks_per_slate(d) for b, d in logs.items()}
    rnd, bts = logs["random"], logs["bts"]
    L, m = rnd.n_positions, rnd.n_actions
    uniform = np.full((L, m), 1.0 / m)
    rows = []
    # 1. on-policy
    for est in (per_position_ips_rows(rnd, uniform, level),
                pseudo_inverse_rows(rnd, uniform, "uniform", level)):
        rows.append(_row("random", "random (on-policy)", est, emp["random"], True))
    for est in (per_position_ips_rows(bts, bts.propensities, level),
                pseudo_inverse_rows(bts, bts.propensities, "independent", level)):
        rows.append(_row("bts", "bts (on-policy)", est, emp["bts"], True))
    # 2. cross-log
    rows.append(_row("bts", "random", per_position_ips_rows(bts, uniform, level),
                     emp["random"], False))
    # 3. other targets on the random log
    alpha, beta = load_obd_prior(root, campaign)
    q_bts = bts_marginals(alpha, beta, L, rng, n_draws)
    top = np.argsort(-(alpha / (alpha + beta)), kind="stable")[:L]
    q_top = np.zeros((L, m))
    q_top[np.arange(L), top] = 1.0
    for name, q in (("bts-prior", q_bts), ("top3-prior-mean", q_top)):
        for est in (per_position_ips_rows(rnd, q, level),
                    pseudo_inverse_rows(rnd, q, "uniform", level)):
            rows.append(_row("random", name, est, emp["bts"] if name == "bts-prior" else None,
                             False))
    return {"campaign": campaign, "n_slots": L, "n_items": m,
            "empirical": {b: {"value": v, "std_error": se} for b, (v, se) in emp.items()},
            "rows": rows}


def to_markdown(studies: Sequence[dict[str, Any]]) -> str:
    """Markdown tables of :func:`obd_slate_study` results (clicks per slate, in %)."""
    out = []
    for st in studies:
        e = st["empirical"]
        out.append(f"### campaign `{st['campaign']}` ({st['n_items']} items, {st['n_slots']} "
                   f"slots): empirical clicks per slate random {100 * e['random']['value']:.3f}%"
                   f" (SE {100 * e['random']['std_error']:.3f}), bts "
                   f"{100 * e['bts']['value']:.3f}% (SE {100 * e['bts']['std_error']:.3f})\n")
        out.append("| log | target | estimator | estimate % | SE % | 95% interval % | events "
                   "| reference % | z |")
        out.append("|---|---|---|---:|---:|---|---:|---:|---:|")
        for r in st["rows"]:
            ref = f"{100 * r['reference']:.3f}" if "reference" in r else ""
            z = f"{r['z']:.2f}" if "z" in r else ""
            out.append(f"| {r['log']} | {r['target']} | {r['estimator']} | "
                       f"{100 * r['value']:.3f} | {100 * r['std_error']:.3f} | "
                       f"[{100 * r['low']:.3f}, {100 * r['high']:.3f}] | {r['n_events']} | "
                       f"{ref} | {z} |")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tsbandit.evaluation.slate_study [--obd DIR] [--seed N]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = find_obd_dir()
    seed = 0
    while args:
        a = args.pop(0)
        if a == "--obd":
            root = Path(args.pop(0))
        elif a == "--seed":
            seed = int(args.pop(0))
    if root is None:
        sys.stderr.write("Open Bandit Dataset not found; pass --obd DIR\n")
        return 2
    rng = np.random.default_rng(seed)
    studies = [obd_slate_study(root, c, rng=rng) for c in ("all", "men", "women")]
    sys.stdout.write(to_markdown(studies) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
