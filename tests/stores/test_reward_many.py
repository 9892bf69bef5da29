"""The batched reward calls on every store: ``apply_reward_many`` is ``apply_reward`` for each
item in one round trip (each item its own answer, one refused item never fails the others,
an item applied at most once), ``get_pending_many`` is ``get_pending`` for each id."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concurrency import in_threads
from tsbandit.errors import (
    BanditNotFoundError,
    DecisionExpiredError,
    DecisionNotFoundError,
    SerializationError,
    VersionConflictError,
)
from tsbandit.stores import MemoryStore, NewDecision, RewardItem, RewardResult, Store

from .conftest import SHARED_KINDS, make_backend
from .test_contract import CONFIG, arrays, assert_arrays, expected, one_hot


@pytest.fixture
def bandit(store: Store) -> str:
    store.create_bandit("bx", CONFIG, arrays())
    store.put_pending_many("bx", [NewDecision(f"d{i}", {"arm": i % 3, "i": i}, 100.0)
                                  for i in range(6)])
    return "bx"


def test_each_item_its_own_answer(store: Store, bandit: str) -> None:
    items = [
        RewardItem("d0", one_hot(0), {"id": "d0"}, 50.0, outcome=1.0),
        RewardItem("nope", one_hot(0), {"id": "nope"}, 50.0),  # unknown
        RewardItem("d1", one_hot(1), {"id": "d1"}, 100.5),  # past its deadline
        RewardItem("d2", one_hot(2), {"id": "d2"}, 50.0, config_version=7),  # stale layout
        RewardItem("d3", {"n": np.zeros(5)}, {"id": "d3"}, 50.0),  # bad shape
        RewardItem("d4", one_hot(1), {"id": "d4"}, 50.0, outcome=float("nan")),  # bad outcome
        RewardItem("d0", one_hot(0, value=9.0), {"id": "d0 again"}, 50.0, outcome=0.0),
        RewardItem("d5", one_hot(2), {"id": "d5"}, 50.0, config_version=0),
    ]
    out = store.apply_reward_many(bandit, items)
    assert len(out) == len(items)
    assert out[0] == RewardResult("applied", 1)
    assert isinstance(out[1], DecisionNotFoundError)
    assert isinstance(out[2], DecisionExpiredError)
    assert isinstance(out[3], VersionConflictError)
    assert isinstance(out[4], SerializationError)
    assert isinstance(out[5], SerializationError)
    assert out[6] == RewardResult("duplicate", 1)  # the first item of d0 applied it
    assert out[7] == RewardResult("applied", 2)
    assert_arrays(store, bandit, expected([one_hot(0), one_hot(2)]))
    assert [e["id"] for e in store.iter_events(bandit)] == ["d0", "d5"]
    # the refused ones changed nothing: still pending, and a single reward applies them
    got = store.get_pending_many(bandit, ["d0", "d1", "d2", "d3", "d4", "d5", "nope"])
    assert [g.status for g in got[:6]] == [  # type: ignore[union-attr]
        "rewarded", "pending", "pending", "pending", "pending", "rewarded"]
    assert got[0].outcome == 1.0 and got[2].payload == {"arm": 2, "i": 2}  # type: ignore[union-attr]
    assert isinstance(got[6], DecisionNotFoundError)
    assert store.apply_reward(bandit, "d3", one_hot(0), None, now=60.0).version == 3


def test_get_pending_many_is_get_pending_for_each(store: Store, bandit: str) -> None:
    store.apply_reward(bandit, "d4", one_hot(1), None, now=1.0, outcome=0.5)
    ids = ["d4", "d0", "zz", "d4", "d5"]
    got = store.get_pending_many(bandit, ids)
    for i, g in zip(ids, got, strict=True):
        if i == "zz":
            assert isinstance(g, DecisionNotFoundError)
            with pytest.raises(DecisionNotFoundError):
                store.get_pending(bandit, i)
        else:
            assert g == store.get_pending(bandit, i)
    assert got[0].outcome == 0.5  # type: ignore[union-attr]
    assert store.get_pending_many(bandit, []) == []


def test_unknown_bandit_and_empty_batches(store: Store, bandit: str) -> None:
    assert store.apply_reward_many(bandit, []) == []
    for call in (lambda: store.apply_reward_many("ghost", [RewardItem("d0", {}, None, 1.0)]),
                 lambda: store.apply_reward_many("ghost", []),
                 lambda: store.get_pending_many("ghost", ["d0"]),
                 lambda: store.get_pending_many("ghost", [])):
        with pytest.raises(BanditNotFoundError):
            call()
    # an item refused before the store is asked still answers alone
    out = store.apply_reward_many(bandit, [RewardItem("d0", {}, None, float("inf"))])
    assert len(out) == 1 and isinstance(out[0], Exception)
    assert store.read(bandit).version == 0


def test_concurrent_batches_apply_each_id_once(store: Store, bandit: str) -> None:
    """4 threads send overlapping batches (each id in every batch, twice): each id once."""
    ids = [f"c{j}" for j in range(60)]
    store.put_pending_many(bandit, [NewDecision(i, {"arm": 0}, 100.0) for i in ids])

    def work(t: int) -> list:
        order = ids[t:] + ids[:t]
        return store.apply_reward_many(bandit, [RewardItem(i, {"n": np.array([1.0, 0, 0])},
                                                           {"id": i}, 50.0)
                                                for i in order + order[::-1]])

    answers = in_threads(work, 4)
    statuses = [r.status for out in answers for r in out]  # type: ignore[attr-defined]
    assert statuses.count("applied") == len(ids)
    assert statuses.count("duplicate") == 8 * len(ids) - len(ids)
    assert store.read(bandit).arrays["n"].tolist() == [60.0, 0.0, 0.0]
    assert sorted(e["id"] for e in store.iter_events(bandit)) == sorted(ids)


# ---------------------------------------------------------------------------------------------
# Property: batched and single rewards, duplicates included, in any interleaving, leave the
# books equal to applying each decision's first reward once.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=SHARED_KINDS)
def other(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    backend = make_backend(request.param, request, tmp_path_factory.mktemp("many"))
    yield backend.open()
    backend.close()


_names = itertools.count()
N_IDS = 6
reward = st.tuples(st.integers(0, N_IDS), st.sampled_from([0.0, 1.0, 2.5]))  # id N_IDS unknown
calls = st.lists(st.one_of(st.tuples(st.just("one"), reward),
                           st.tuples(st.just("many"), st.lists(reward, max_size=5))),
                 max_size=8)


def expected_of(seq: list) -> tuple[dict[int, float], list[str], list[float]]:
    """What ``seq`` must do on one log: each id's first reward, each reward's answer, and the
    books (``n`` per arm, the arm of id ``i`` being ``i % 3``)."""
    first: dict[int, float] = {}
    answers = []
    for kind, arg in seq:
        for i, v in ([arg] if kind == "one" else arg):
            if i == N_IDS:
                answers.append("notfound")
            elif i in first:
                answers.append("duplicate")
            else:
                first[i] = v
                answers.append("applied")
    books = np.zeros(3)
    for i, v in first.items():
        books[i % 3] += v
    return first, answers, books.tolist()


def run(store: Store, name: str, seq: list, ids: list[str]) -> list[str]:
    """Play ``seq`` on ``store`` (``ids[i]`` the id of index ``i``; index ``N_IDS`` unknown):
    a "one" by ``apply_reward``, a "many" by ``apply_reward_many``; the answers."""
    answers = []
    for kind, arg in seq:
        batch = [arg] if kind == "one" else arg
        items = [RewardItem(ids[i], {"n": np.eye(3)[i % 3] * v}, {"i": i, "v": v}, 10.0,
                            outcome=v) for i, v in batch]
        if kind == "one":
            try:
                answers.append(store.apply_reward(name, *items[0][:4],
                                                  outcome=items[0].outcome).status)
            except DecisionNotFoundError:
                answers.append("notfound")
        else:
            answers += ["notfound" if isinstance(r, DecisionNotFoundError) else r.status  # type: ignore[union-attr]
                        for r in store.apply_reward_many(name, items)]
    return answers


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=40)
@given(seq=calls)
def test_interleaved_batches_apply_each_first_reward_once(other: Store, seq: list) -> None:
    name = f"m{next(_names)}"
    first, want_answers, want = expected_of(seq)
    ids = [f"d{i}" for i in range(N_IDS + 1)]  # d{N_IDS} is never decided
    for store in (MemoryStore(), other):
        store.create_bandit(name, {}, {"n": np.zeros(3)})
        store.put_pending_many(name, [NewDecision(ids[i], {"arm": i % 3}, 100.0)
                                      for i in range(N_IDS)])
        assert run(store, name, seq, ids) == want_answers
        assert store.read(name).arrays["n"].tolist() == want
        assert store.read(name).version == len(first)
        assert [e["v"] for e in store.iter_events(name)] == list(first.values())
        outcomes = store.get_pending_many(name, ids[:N_IDS])
        assert [o.outcome for o in outcomes] == [first.get(i) for i in range(N_IDS)]  # type: ignore[union-attr]
        store.delete_bandit(name)
