"""The supervised bake-off against peer libraries (optional ``bench`` extra: vowpalwabbit,
mabwiser), on exactly the streams the lab uses (same data sets, same permutations per seed).

Usage::

    python benchmarks/bench_lab_peers.py                 # all four data sets, 10 seeds
    python benchmarks/bench_lab_peers.py iris --seeds 3

Rows (progressive reward = mean reward over the stream, mean +- sd over seeds):

* tsbandit's default contextual sampler (``ts``) and greedy ridge, through the lab runner;
* Vowpal Wabbit ``--cb_explore_adf --squarecb -q sa``: the standardized features are the
  shared namespace, each action has an indicator namespace, and ``-q sa`` crosses them (without
  it the model cannot make the choice depend on the context); cost 1 - reward;
* MABWiser ``LearningPolicy.LinTS()`` with its defaults (alpha 1, l2_lambda 1), updated with
  ``partial_fit`` after every example.

Peers run one Python call per decision, so this script takes a few minutes.
"""

from __future__ import annotations

import argparse

import numpy as np

import harness
from harness import Stopwatch
from tsbandit.lab import SupervisedBandit
from tsbandit.lab.scenarios import run_scenario
from tsbandit.lab.supervised import DATASETS


def stream(ds: str, seed: int, n_trials: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The lab's contexts ``(T, n, d)`` and labels ``(T, n)`` for ``ds`` (same permutations)."""
    passes = 1 if ds == "digits" else 5
    env = SupervisedBandit.from_sklearn(ds, passes=passes)
    T = env.natural_rounds
    blk = env.episode(n_trials, T, np.random.SeedSequence(seed, spawn_key=(0,))).block(0, T)
    assert blk.contexts is not None
    return blk.contexts, blk.expected.argmax(axis=2), env.n_arms, T


def vw_reward(X: np.ndarray, y: np.ndarray, K: int, seed: int) -> float:
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(f"--cb_explore_adf --squarecb -q sa --quiet --random_seed {seed}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for x, label in zip(X, y, strict=True):
        shared = "shared |s " + " ".join(f"f{j}:{v:.6g}" for j, v in enumerate(x[:-1]))
        actions = [f"|a k{k}" for k in range(K)]
        pmf = np.asarray(vw.predict([shared, *actions]), dtype=float)
        a = int(rng.choice(K, p=pmf / pmf.sum()))
        r = 1.0 if a == label else 0.0
        total += r
        actions[a] = f"{a}:{1.0 - r}:{pmf[a]:.6g} " + actions[a]
        vw.learn([shared, *actions])
    vw.finish()
    return total / len(y)


def mabwiser_reward(X: np.ndarray, y: np.ndarray, K: int, seed: int) -> float:
    from mabwiser.mab import MAB, LearningPolicy

    mab = MAB(list(range(K)), LearningPolicy.LinTS(), seed=seed)
    # MABWiser needs one fit before predicting: the first example, with a uniform random arm
    rng = np.random.default_rng(seed)
    a0 = int(rng.integers(K))
    total = float(a0 == y[0])
    mab.fit([a0], [total], X[:1])
    for x, label in zip(X[1:], y[1:], strict=True):
        a = int(mab.predict(x[None, :]))
        r = 1.0 if a == label else 0.0
        total += r
        mab.partial_fit([a], [r], x[None, :])
    return total / len(y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    print(harness.markdown_header("policy", *args.datasets))
    rows: dict[str, list[str]] = {}
    for ds in args.datasets:
        res = run_scenario(f"bakeoff-{ds}", policies=["ts", "greedy"], trials=args.seeds,
                           seed=0)
        for p in ("ts", "greedy"):
            rr = res.policies[p].rewards / res.rounds
            rows.setdefault(f"tsbandit {p}", []).append(f"{rr.mean():.3f} ± {rr.std(ddof=1):.3f}")
        X, y, K, _T = stream(ds, 0, args.seeds)
        for name, fn in (("VW squarecb -q sa", vw_reward), ("MABWiser LinTS", mabwiser_reward)):
            try:
                with Stopwatch() as sw:
                    vals = [fn(X[:, i], y[:, i], K, i) for i in range(args.seeds)]
            except ImportError:
                rows.setdefault(name, []).append("not installed")
                continue
            rows.setdefault(name, []).append(
                f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f} ({sw.wall:.0f} s)")
    for name, cells in rows.items():
        print(harness.markdown_row(name, *cells))
    print(f"\n(load average {harness.load_average()})")


if __name__ == "__main__":
    main()
