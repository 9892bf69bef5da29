"""The batched reward calls (:mod:`stores.test_reward_many`) on a :class:`ShardedStore` whose
every bandit has 3 shards, over Memory, SQLite (a file), Redis and the 3-node Redis Cluster."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from stores import test_contract, test_reward_many
from stores.backends import Backend
from stores.conftest import SHARED_KINDS, make_backend
from stores.suites import suite_functions
from tsbandit.errors import DecisionNotFoundError
from tsbandit.stores import NewDecision, RewardItem, ShardedStore, Store

bandit = test_reward_many.bandit
N = test_reward_many.N_IDS
_names = itertools.count()


@pytest.fixture
def store(backend: Backend) -> Store:
    return ShardedStore(backend.open(), default_shards=3)


@pytest.fixture(scope="module", params=SHARED_KINDS)
def other(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    backend = make_backend(request.param, request, tmp_path_factory.mktemp("many"))
    yield ShardedStore(backend.open(), default_shards=3)
    backend.close()



_PER_SHARD_VERSION = "answers pin the one-log version after each reward (a shard's version here)"
EXCLUDED_MANY: dict[str, str] = {
    "test_each_item_its_own_answer": _PER_SHARD_VERSION,
    "test_interleaved_batches_apply_each_first_reward_once": (
        "pins the one-log event order and version; the sharded property below checks the "
        "books, the answers and each id's outcome"),
}
globals().update(suite_functions(test_reward_many, EXCLUDED_MANY, {"store", "other"}, "_sharded"))


def test_batch_over_shards_keeps_order_and_first_wins(store: Store) -> None:
    """Twelve decisions over three shards, rewarded in one batch with repeats and an unknown
    id: each answer in its item's place, each id applied once (by its first item)."""
    from tsbandit.stores.shard_routing import shard_of_id

    store.create_bandit("bs", test_contract.CONFIG, test_contract.arrays())
    ids = [f"bs~{(i * 2654435761) % (1 << 32):08x}{'0' * 24}" for i in range(12)]
    assert len({shard_of_id(i, 3) for i in ids}) == 3
    store.put_pending_many("bs", [NewDecision(i, {"arm": 0}, 100.0) for i in ids[:4]])
    for i in ids[4:]:
        store.put_pending("bs", i, {"arm": 0}, 100.0)
    batch = [*ids, ids[3], "bs~" + "f" * 32, ids[0]]
    items = [RewardItem(i, test_contract.one_hot(0), {"id": i}, 50.0) for i in batch]
    out = store.apply_reward_many("bs", items)
    assert [getattr(r, "status", None) for r in out] == (
        ["applied"] * 12 + ["duplicate", None, "duplicate"])
    assert isinstance(out[13], DecisionNotFoundError)
    assert store.read("bs").arrays["n"].tolist() == [12.0, 0.0, 0.0]
    got = store.get_pending_many("bs", [ids[5], "bs~" + "e" * 32, ids[1]])
    assert [getattr(g, "decision_id", None) for g in got] == [ids[5], None, ids[1]]
    assert isinstance(got[1], DecisionNotFoundError)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=30)
@given(seq=test_reward_many.calls)
def test_interleaved_batches_over_shards(other: Store, seq: list) -> None:
    """Batched and single rewards in any interleaving, duplicates and an unknown id included:
    each answer is the one-log answer, the books are each decision's first reward applied once,
    and the events are those first rewards (each shard's in its own order)."""
    name = f"s{next(_names)}"
    ids = [f"{name}~{(i * 2654435761) % (1 << 32):08x}{'0' * 24}" for i in range(N)]
    ids.append(f"{name}~{'f' * 32}")  # never decided
    first, want_answers, want = test_reward_many.expected_of(seq)
    other.create_bandit(name, {}, {"n": np.zeros(3)})
    other.put_pending_many(name, [NewDecision(d, {"arm": i % 3}, 100.0)
                                  for i, d in enumerate(ids[:N])])
    assert test_reward_many.run(other, name, seq, ids) == want_answers
    assert other.read(name).arrays["n"].tolist() == want
    got = sorted((e["i"], e["v"]) for e in other.iter_events(name))
    assert got == sorted(first.items())
    outcomes = other.get_pending_many(name, ids[:N])
    assert [o.outcome for o in outcomes] == [first.get(i) for i in range(N)]  # type: ignore[union-attr]
    other.delete_bandit(name)
