"""Several processes on one store: nothing lost, nothing doubled, exactly-once rewards, and
crash safety (SIGKILL mid-stream) against SQLite, Redis and Redis Cluster.

Size: the issue's 8 processes x 5,000 rewards (each reward is a ``put_pending`` plus an
``apply_reward``, and every 4th also a plain ``add``): about 8 s per store on 2 cores.
``TSBANDIT_CONCURRENCY_REWARDS=1000`` shrinks it for a quick local run. Children come from a
forkserver that preloads numpy and the stores.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from tsbandit.stores import NewDecision, Store

from . import workers

N_PROCS = 8
N_REWARDS = int(os.environ.get("TSBANDIT_CONCURRENCY_REWARDS", "5000"))


@pytest.fixture(scope="module")
def ctx() -> mp.context.BaseContext:
    c = mp.get_context("forkserver")
    c.set_forkserver_preload(["numpy", "tsbandit.stores", "redis", "stores.workers"])
    return c


def _join(procs: list, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(deadline - time.monotonic(), 0.1))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "worker processes hung"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _assert_totals(store: Store, name: str, want: dict[str, np.ndarray]) -> None:
    got = store.read(name).arrays
    for key, v in want.items():
        np.testing.assert_array_equal(got[key], v, err_msg=key)


def test_many_processes_add_exactly(shared_backend, ctx) -> None:
    store = shared_backend.open()
    store.create_bandit("conc", {}, workers.layout())
    start = ctx.Event()
    procs = [
        ctx.Process(
            target=workers.reward_worker, args=(shared_backend.url, "conc", w, N_REWARDS, start)
        )
        for w in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    start.set()
    _join(procs)
    _assert_totals(store, "conc", workers.expected_totals(N_PROCS, N_REWARDS))
    n_adds = N_PROCS * len(range(0, N_REWARDS, 4))
    assert store.read("conc").version == N_PROCS * N_REWARDS + n_adds
    assert sum(1 for _ in store.iter_events("conc")) == N_PROCS * N_REWARDS


def test_same_decision_from_four_processes_applies_once(shared_backend, ctx) -> None:
    store = shared_backend.open()
    store.create_bandit("race", {}, workers.layout())
    ids = [f"d{i}" for i in range(40)]
    for did in ids:
        store.put_pending("race", did, {"arm": int(did[1:]) % workers.K}, 1e12)
    n_racers = 4
    barrier, queue = ctx.Barrier(n_racers), ctx.Queue()
    procs = [
        ctx.Process(
            target=workers.race_worker,
            args=(shared_backend.url, "race", ids, barrier, queue, racer),
        )
        for racer in range(n_racers)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    _join(procs)
    assert sum(a for a, _, _ in results) == len(ids)
    assert sum(d for _, d, _ in results) == (n_racers - 1) * len(ids)
    # each decision keeps the outcome of the one racer whose reward applied
    won = {did: racer for _, _, w in results for did, racer in w.items()}
    assert sorted(won) == sorted(ids)
    assert {did: store.get_pending("race", did).outcome for did in ids} == {
        did: float(racer) for did, racer in won.items()}
    want = workers.layout()
    for did in ids:
        for key, v in workers.reward_delta(int(did[1:]) % workers.K, 0).items():
            want[key] += v
    _assert_totals(store, "race", want)
    assert sum(1 for _ in store.iter_events("race")) == len(ids)


def _check_all_or_nothing(store: Store, ids: list[str]) -> set[str]:
    """Statistics and event log must equal exactly the rewards marked consumed."""
    done = {did for did in ids if store.get_pending("crash", did).status == "rewarded"}
    want = workers.layout()
    for did in done:
        i = int(did[1:])
        for key, v in workers.reward_delta(i % workers.K, i).items():
            want[key] += v
    _assert_totals(store, "crash", want)
    logged = [e["id"] for e in store.iter_events("crash")]
    assert sorted(logged) == sorted(done)
    assert store.read("crash").version == len(done)
    return done


def test_sigkill_mid_stream_leaves_whole_rewards(shared_backend, ctx) -> None:
    store = shared_backend.open()
    store.create_bandit("crash", {}, workers.layout())
    # enough that a worker cannot finish the rest while a busy machine delays the kill
    ids = [f"d{i}" for i in range(3000)]
    store.put_pending_many("crash", [NewDecision(did, {}, 1e12) for did in ids])
    done: set[str] = set()
    for round_, threshold in enumerate((40, 120)):
        counter = ctx.Value("i", 0)
        todo = [did for did in ids if did not in done]
        p = ctx.Process(
            target=workers.crash_worker, args=(shared_backend.url, "crash", todo, counter)
        )
        p.start()
        deadline = time.monotonic() + 120
        while counter.value < threshold and p.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        assert p.exitcode == -signal.SIGKILL, f"round {round_}: worker was not killed mid-stream"
        done = _check_all_or_nothing(shared_backend.open(), ids)
        assert len(done) >= threshold
        assert len(done) < len(ids)
    # every decision the killed workers did not reward can still be rewarded, once
    for did in ids:
        i = int(did[1:])
        res = store.apply_reward(
            "crash", did, workers.reward_delta(i % workers.K, i), {"id": did}, 1.0
        )
        assert res.status == ("duplicate" if did in done else "applied")
    assert _check_all_or_nothing(store, ids) == set(ids)
