"""Microseconds per decision + update for the core policies, side by side in one run.

Usage::

    python benchmarks/bench_core.py            # tsbandit rows (+ peers when installed)
    python benchmarks/bench_core.py --quick    # fewer repetitions
    python benchmarks/bench_core.py --cpu      # CPU time, best repetition (loaded machine)

Rows:
* Beta TS, 5 arms, one decision + update at a time (``Bandit.select`` / ``Bandit.update``);
* linear TS, 5 arms, d = 11, one at a time;
* the same with 1,000 decisions batched (``select_batch`` + ``update_batch``), per decision;
* scaling of one-at-a-time linear TS over K in {5, 100, 1000} and d in {11, 50, 200};
* BLAS is limited to one thread when ``threadpoolctl`` is installed (as in a service worker);
  the load average before and after is printed, since the machine is shared;
* floors measured in the same run: the same draws and updates as bare NumPy loops (no API,
  no validation), so the ratio ours / floor says what the library's own overhead costs,
  whatever the load of the shared machine;
* baselines measured in the same run: a tutorial-style contextual class (matrix inverse and
  ``multivariate_normal`` on every call, written here from the tutorial's description) and,
  when the ``bench`` extra is installed, MABWiser's LinTS and Vowpal Wabbit's ``--cb_explore_adf``.

Each figure is the median of several timed repetitions (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from tsbandit import Bandit
from tsbandit.policies import BetaBernoulli, LinearGaussian, ThompsonSampling

#: ``--cpu``: CPU time of this process and the best repetition, instead of wall time and the
#: median (on a shared machine the wall clock also counts the time spent waiting for a core)
CPU_MODE = False


def timed(fn: Callable[[], int], repeats: int) -> float:
    """Median (``--cpu``: minimum) microseconds per operation; ``fn`` runs a loop and returns
    its op count."""
    clock = time.process_time if CPU_MODE else time.perf_counter
    fn()  # warm-up
    per_op = []
    for _ in range(repeats):
        t0 = clock()
        n = fn()
        per_op.append((clock() - t0) / n * 1e6)
    return min(per_op) if CPU_MODE else statistics.median(per_op)


def beta_one_at_a_time(n: int) -> Callable[[], int]:
    rng = np.random.default_rng(0)
    rates = np.array([0.03, 0.045, 0.028, 0.015, 0.06])
    u = rng.random(n)
    bandit = Bandit([f"offer{i}" for i in range(5)], BetaBernoulli(), ThompsonSampling(), seed=1)

    def run() -> int:
        for i in range(n):
            d = bandit.select()
            bandit.update(d.index, 1.0 if u[i] < rates[d.index] else 0.0)
        return n

    return run


def linear_one_at_a_time(n: int, k: int, d: int) -> Callable[[], int]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(k, d)) * 0.1
    bandit = Bandit([f"a{i}" for i in range(k)],
                    LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25),
                    ThompsonSampling(), seed=1)

    def run() -> int:
        for i in range(n):
            x = X[i]
            dec = bandit.select(x)
            bandit.update(dec.index, float(W[dec.index] @ x), x)
        return n

    return run


def linear_batched(batches: int, batch: int, k: int, d: int) -> Callable[[], int]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch, d))
    W = rng.normal(size=(k, d)) * 0.1
    bandit = Bandit([f"a{i}" for i in range(k)],
                    LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25),
                    ThompsonSampling(), seed=1)

    def run() -> int:
        for _ in range(batches):
            dec = bandit.select_batch(X)
            idx = dec.indices[:, 0]
            bandit.update_batch(idx, np.einsum("nd,nd->n", X, W[idx]), X)
        return batches * batch

    return run


def beta_bare_numpy(n: int) -> Callable[[], int]:
    """The floor: the same Beta draw (one gamma call) and argmax, no API, no validation."""
    rng = np.random.default_rng(0)
    rates = np.array([0.03, 0.045, 0.028, 0.015, 0.06])
    u = rng.random(n)
    gen = np.random.default_rng(1)
    ab = np.ones((2, 5))

    def run() -> int:
        for i in range(n):
            g = gen.standard_gamma(ab)
            a = int(np.argmax(g[0] / (g[0] + g[1])))
            ab[0 if u[i] < rates[a] else 1, a] += 1.0
        return n

    return run


def linear_bare_numpy(n: int, k: int, d: int) -> Callable[[], int]:
    """The floor: the same linear TS math (square-root factors, Potter update, A and b kept for
    exact refreshes) as a bare NumPy loop, no API, no validation."""
    import math

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(k, d)) * 0.1
    gen = np.random.default_rng(1)
    S = np.repeat(np.eye(d)[None], k, axis=0)
    M = np.zeros((k, d))
    A = np.zeros((k, d, d))
    B = np.zeros((k, d))
    noise = 0.25

    def run() -> int:
        for i in range(n):
            x = X[i]
            phi = x @ S
            score = M @ x + np.sqrt((phi * phi).sum(axis=1)) * gen.standard_normal(k)
            a = int(np.argmax(score))
            r = float(W[a] @ x)
            A[a] += x[:, None] * x
            B[a] += r * x
            p = phi[a]
            s_phi = S[a] @ p
            c = float(p @ p) + noise
            M[a] += (r - float(x @ M[a])) / c * s_phi
            S[a] -= (1.0 / (c * (1.0 + math.sqrt(noise / c))) * s_phi)[:, None] * p
        return n

    return run


def tutorial_style(n: int, k: int, d: int) -> Callable[[], int]:
    """The tutorial's algorithm as it is written there: inv + multivariate_normal each call."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(k, d)) * 0.1
    mus = [np.zeros(d) for _ in range(k)]
    lams = [np.eye(d) for _ in range(k)]
    noise = 0.1

    def run() -> int:
        for i in range(n):
            x = X[i]
            samples = []
            for a in range(k):
                cov = np.linalg.inv(lams[a])
                samples.append(float(x @ rng.multivariate_normal(mus[a], cov)))
            a = int(np.argmax(samples))
            r = float(W[a] @ x)
            lams[a] = lams[a] + np.outer(x, x) / noise
            sigma = np.linalg.inv(lams[a])
            mus[a] = sigma @ (lams[a] @ mus[a] + r * x / noise)
        return n

    return run


def mabwiser_lints(n: int, k: int, d: int) -> Callable[[], int] | None:
    try:
        from mabwiser.mab import MAB, LearningPolicy
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(k, d)) * 0.1
    arms = list(range(k))
    mab = MAB(arms, LearningPolicy.LinTS(alpha=1.0), seed=1)
    mab.fit(decisions=[0, 1, 2, 3, 4][:k] * 2, rewards=[0.0] * (2 * k), contexts=X[: 2 * k])

    def run() -> int:
        for i in range(n):
            x = X[i : i + 1]
            a = mab.predict(x)
            mab.partial_fit([a], [float(W[a] @ X[i])], x)
        return n

    return run


def vw_cb_explore_adf(n: int, k: int, d: int) -> Callable[[], int] | None:
    try:
        import vowpalwabbit
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(k, d)) * 0.1
    vw = vowpalwabbit.Workspace("--cb_explore_adf --quiet --epsilon 0.1")

    def example(x: np.ndarray, label: tuple[int, float, float] | None) -> list[str]:
        shared = "shared |u " + " ".join(f"f{j}:{v:.5f}" for j, v in enumerate(x))
        lines = [shared]
        for a in range(k):
            prefix = ""
            if label is not None and label[0] == a:
                prefix = f"0:{label[1]}:{label[2]} "
            lines.append(f"{prefix}|a arm={a}")
        return lines

    def run() -> int:
        for i in range(n):
            x = X[i]
            probs = np.asarray(vw.predict(example(x, None)))
            a = int(rng.choice(k, p=probs / probs.sum()))
            vw.learn(example(x, (a, -float(W[a] @ x), float(probs[a]))))
        return n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--cpu", action="store_true",
                        help="process CPU time, best repetition (for a loaded shared machine)")
    args = parser.parse_args()
    global CPU_MODE
    CPU_MODE = args.cpu
    reps = 3 if args.quick else 7
    n = 2000 if args.quick else 5000

    try:  # one BLAS thread, as a service worker runs (and no oversubscription on 2 cores)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        blas = "1 BLAS thread (threadpoolctl)"
    except ImportError:
        blas = "BLAS threads: library default"
    clock = "CPU time, best of the repetitions" if CPU_MODE else "wall time, median"
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {blas}; "
          f"{clock}")

    rows: list[tuple[str, float, str]] = []
    beta = timed(beta_one_at_a_time(n), reps)
    rows.append(("Beta TS, K=5, one at a time", beta, "target <= 10"))
    floor = timed(beta_bare_numpy(n), reps)
    rows.append(("  floor: bare NumPy loop, same Beta draw", floor,
                 f"ours = x{beta / floor:.2f} the floor"))
    lin = timed(linear_one_at_a_time(n, 5, 11), reps)
    rows.append(("linear TS, K=5, d=11, one at a time", lin, "target <= 20"))
    floor = timed(linear_bare_numpy(n, 5, 11), reps)
    rows.append(("  floor: bare NumPy loop, same linear math", floor,
                 f"ours = x{lin / floor:.2f} the floor"))
    batched = timed(linear_batched(5, 1000, 5, 11), reps)
    rows.append(("linear TS, K=5, d=11, 1,000 batched (per decision)", batched, "target <= 2"))
    tut = timed(tutorial_style(max(n // 10, 200), 5, 11), reps)
    rows.append(("baseline: tutorial-style class, K=5, d=11", tut, f"x{tut / lin:.0f} ours"))
    peer = mabwiser_lints(max(n // 10, 200), 5, 11)
    if peer is not None:
        t = timed(peer, reps)
        rows.append(("peer: MABWiser LinTS, K=5, d=11", t, f"x{t / lin:.0f} ours"))
    else:
        rows.append(("peer: MABWiser LinTS (pip install '.[bench]')", float("nan"), "absent"))
    peer = vw_cb_explore_adf(max(n // 5, 200), 5, 11)
    if peer is not None:
        t = timed(peer, reps)
        rows.append(("peer: Vowpal Wabbit cb_explore_adf, K=5, d=11", t, f"x{t / lin:.1f} ours"))
    else:
        rows.append(("peer: Vowpal Wabbit (pip install '.[bench]')", float("nan"), "absent"))
    for k in (5, 100, 1000):
        for d in (11, 50, 200):
            steps = max(20, min(n, int(2e6 / (k * d * d))))
            t = timed(linear_one_at_a_time(steps, k, d), max(3, reps // 2))
            rows.append((f"linear TS scaling, K={k}, d={d}, one at a time", t, ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'µs/decision+update':>18}  note")
    print("-" * (width + 34))
    for name, us, note in rows:
        print(f"{name:<{width}}  {us:>18.1f}  {note}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
