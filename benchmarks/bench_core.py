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
* every tsbandit row twice, in the same run: on the NumPy path and with the optional compiled
  kernels (numba, the ``fast`` extra; ``tsbandit.policies._jit``), repetitions alternating
  between the two, with the ratio; the two bandits of a row make the same decisions (the
  kernels are bit-identical), which the table checks and says;
* floors measured in the same run: the same draws and updates as bare NumPy loops (no API,
  no validation), so the ratio ours / floor says what the library's own overhead costs,
  whatever the load of the shared machine;
* baselines measured in the same run: a tutorial-style contextual class (matrix inverse and
  ``multivariate_normal`` on every call, written here from the tutorial's description) and,
  when the ``bench`` extra is installed, MABWiser's LinTS and Vowpal Wabbit's ``--cb_explore_adf``.

Each figure is the median of several timed repetitions (``time.perf_counter``), taken and
printed with ``benchmarks/harness.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

import harness
from harness import Col, Table
from tsbandit import Bandit
from tsbandit.policies import BetaBernoulli, LinearGaussian, ThompsonSampling, _jit

#: ``--cpu``: CPU time of this process and the best repetition, instead of wall time and the
#: median (on a shared machine the wall clock also counts the time spent waiting for a core)
CPU_MODE = False


def timed(fn: Callable[[], int], repeats: int) -> float:
    """Median (``--cpu``: minimum) microseconds per operation; ``fn`` runs a loop and returns
    its op count."""
    return harness.pick(harness.measure(fn, repeats, cpu=CPU_MODE, per_op=True), CPU_MODE)


def timed_pair(make: Callable[[], Callable[[], int]], repeats: int
               ) -> tuple[float, float | None, bool | None]:
    """``(NumPy path µs, compiled-kernel µs or None, same final state?)`` of one case.

    Two instances of the case (same seeds), one per path; repetitions alternate between the
    paths so that both see the same load. Without kernels only the NumPy figure is measured.
    """
    _jit.use(False)
    slow = make()
    have_jit = _jit.use(True)
    fast = make() if have_jit else None
    fns = [slow] if fast is None else [slow, fast]
    samples = harness.alternate(fns, repeats, cpu=CPU_MODE, per_op=True,
                                before=lambda i: _jit.use(i == 1))
    _jit.use(True)
    ours = [harness.pick(s, CPU_MODE) for s in samples]
    same = None
    if fast is not None and hasattr(slow, "bandit"):
        same = (json.dumps(slow.bandit.to_dict(), sort_keys=True)  # type: ignore[attr-defined]
                == json.dumps(fast.bandit.to_dict(), sort_keys=True))  # type: ignore[attr-defined]
    return ours[0], (ours[1] if fast is not None else None), same


def linear_world(n: int, k: int, d: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """The linear cases' generator (seed 0), after drawing ``n`` contexts ``(n, d)`` and the true
    weights ``(k, d)`` from it: every case of a shape sees the same stream."""
    rng = np.random.default_rng(0)
    return rng, rng.normal(size=(n, d)), rng.normal(size=(k, d)) * 0.1


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

    run.bandit = bandit  # type: ignore[attr-defined]
    return run


def linear_one_at_a_time(n: int, k: int, d: int) -> Callable[[], int]:
    _rng, X, W = linear_world(n, k, d)
    bandit = Bandit([f"a{i}" for i in range(k)],
                    LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25),
                    ThompsonSampling(), seed=1)

    def run() -> int:
        for i in range(n):
            x = X[i]
            dec = bandit.select(x)
            bandit.update(dec.index, float(W[dec.index] @ x), x)
        return n

    run.bandit = bandit  # type: ignore[attr-defined]
    return run


def linear_batched(batches: int, batch: int, k: int, d: int) -> Callable[[], int]:
    _, X, W = linear_world(batch, k, d)
    bandit = Bandit([f"a{i}" for i in range(k)],
                    LinearGaussian(n_features=d, prior_precision=1.0, noise_variance=0.25),
                    ThompsonSampling(), seed=1)

    def run() -> int:
        for _ in range(batches):
            dec = bandit.select_batch(X)
            idx = dec.indices[:, 0]
            bandit.update_batch(idx, np.einsum("nd,nd->n", X, W[idx]), X)
        return batches * batch

    run.bandit = bandit  # type: ignore[attr-defined]
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

    _rng, X, W = linear_world(n, k, d)
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
    rng, X, W = linear_world(n, k, d)
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


def optional(module: str) -> Any:
    """A peer library's module, or None when the ``bench`` extra is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def mabwiser_lints(n: int, k: int, d: int) -> Callable[[], int] | None:
    mabwiser = optional("mabwiser.mab")
    if mabwiser is None:
        return None
    _rng, X, W = linear_world(n, k, d)
    mab = mabwiser.MAB(list(range(k)), mabwiser.LearningPolicy.LinTS(alpha=1.0), seed=1)
    mab.fit(decisions=[0, 1, 2, 3, 4][:k] * 2, rewards=[0.0] * (2 * k), contexts=X[: 2 * k])

    def run() -> int:
        for i in range(n):
            x = X[i : i + 1]
            a = mab.predict(x)
            mab.partial_fit([a], [float(W[a] @ X[i])], x)
        return n

    return run


def vw_cb_explore_adf(n: int, k: int, d: int) -> Callable[[], int] | None:
    vowpalwabbit = optional("vowpalwabbit")
    if vowpalwabbit is None:
        return None
    rng, X, W = linear_world(n, k, d)
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

    # one BLAS thread, as a service worker runs (and no oversubscription on 2 cores)
    blas = ("1 BLAS thread (threadpoolctl)" if harness.limit_blas(1)
            else "BLAS threads: library default")
    clock = "CPU time, best of the repetitions" if CPU_MODE else "wall time, median"
    print(f"load average before: {harness.load_average()}; {blas}; {clock}")

    with harness.Stopwatch() as first_call:
        kernels = _jit.kernels()
    first = first_call.wall
    print(f"compiled kernels (numba): {_jit.status}; first call {first:.2f} s "
          "(import, load from the on-disk cache or compile, self-check against NumPy)")

    # (case, NumPy-path µs, kernel µs or None, same state, note)
    rows: list[tuple[str, float, float | None, bool | None, str]] = []

    def pair(name: str, make: Callable[[], Callable[[], int]], note: str,
             repeats: int = reps) -> tuple[float, float]:
        slow, fast, same = timed_pair(make, repeats)
        rows.append((name, slow, fast, same, note))
        return slow, (fast if fast is not None else slow)

    def single(name: str, us: float, note: str) -> None:
        rows.append((name, us, None, None, note))

    _, beta = pair("Beta TS, K=5, one at a time", lambda: beta_one_at_a_time(n), "target <= 10")
    floor = timed(beta_bare_numpy(n), reps)
    single("  floor: bare NumPy loop, same Beta draw", floor,
           f"ours (best path) = x{beta / floor:.2f} the floor")
    _, lin = pair("linear TS, K=5, d=11, one at a time", lambda: linear_one_at_a_time(n, 5, 11),
                  "target <= 20")
    floor = timed(linear_bare_numpy(n, 5, 11), reps)
    single("  floor: bare NumPy loop, same linear math", floor,
           f"ours (best path) = x{lin / floor:.2f} the floor")
    pair("linear TS, K=5, d=11, 1,000 batched (per decision)",
         lambda: linear_batched(5, 1000, 5, 11), "target <= 2 (vectorized; no kernel)")
    tut = timed(tutorial_style(max(n // 10, 200), 5, 11), reps)
    single("baseline: tutorial-style class, K=5, d=11", tut, f"x{tut / lin:.0f} ours")
    peer = mabwiser_lints(max(n // 10, 200), 5, 11)
    if peer is not None:
        t = timed(peer, reps)
        single("peer: MABWiser LinTS, K=5, d=11", t, f"x{t / lin:.0f} ours")
    else:
        single("peer: MABWiser LinTS (pip install '.[bench]')", float("nan"), "absent")
    peer = vw_cb_explore_adf(max(n // 5, 200), 5, 11)
    if peer is not None:
        t = timed(peer, reps)
        single("peer: Vowpal Wabbit cb_explore_adf, K=5, d=11", t, f"x{t / lin:.1f} ours")
    else:
        single("peer: Vowpal Wabbit (pip install '.[bench]')", float("nan"), "absent")
    for k in (5, 100, 1000):
        for d in (11, 50, 200):
            steps = max(20, min(n, int(2e6 / (k * d * d))))
            pair(f"linear TS scaling, K={k}, d={d}, one at a time",
                 lambda steps=steps, k=k, d=d: linear_one_at_a_time(steps, k, d), "",
                 max(3, reps // 2))

    width = max(len(r[0]) for r in rows)
    table = Table(Col("case", width, align="<"), Col("NumPy µs", 9, ".1f"),
                  Col("numba µs", 9, ".1f"), Col("NumPy/numba", 11), Col("same state", 10),
                  Col("note", align="<"), sep="  ")
    print(table.header())
    print("-" * (width + 60))
    for name, slow_us, fast_us, same, note in rows:
        print(table.row(name, slow_us, fast_us,
                        harness.ratio(slow_us, fast_us, prefix=True) if fast_us else None,
                        {None: None, True: "yes", False: "NO"}[same], note))
    if kernels is None:
        print("(no compiled kernels: pip install '.[fast]' for the numba column)")
    print(f"load average after: {harness.load_average()}")


if __name__ == "__main__":
    main()
