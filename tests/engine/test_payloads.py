"""The engine's payload cache: what a reward of its own decision reads instead of the store."""

from __future__ import annotations

import gc

import pytest

from tsbandit.engine import BanditSpec, Engine
from tsbandit.engine.payloads import PayloadCache
from tsbandit.errors import ConfigurationError
from tsbandit.policies import LinearGaussian


def test_a_cached_payload_is_the_stores_payload():
    """Contexts, rankings, nested values: what get() answers equals what the store reads, as
    fresh lists and dicts (a caller changing them changes nothing cached)."""
    eng = Engine.open("memory://", seed=1)
    eng.create_bandit(BanditSpec(name="lin", arms=["a", "b", "c"],
                                 model=LinearGaussian(n_features=2)))
    decisions = eng.decide_batch("lin", [[0.5, -1.0], [1e-300, 3.25]], k=2,
                                 user_ids=["u1", None])
    for d in decisions:
        hit = eng._payloads.get(d.decision_id)
        assert hit is not None and hit.bandit == "lin"
        stored = eng.store.get_pending("lin", d.decision_id)
        assert hit.payload == stored.payload and hit.deadline == stored.deadline
        hit.payload["context"].append(99.0)
        assert eng._payloads.get(d.decision_id).payload == stored.payload


def test_entries_leave_the_garbage_collectors_care():
    """A full cache must not be walked by every full collection: once collected, no entry is
    tracked (a NamedTuple, a dict or a list inside would be, for ever)."""
    cache = PayloadCache(1000)
    cache.put_many("ads", [(f"ads~{i}", {"arm": "a", "ranking": ["a", "b"], "context": [1.0],
                                         "metrics": {"m": 1}}, 10.0) for i in range(1000)])
    gc.collect()
    assert not any(gc.is_tracked(e) for e in cache._items.values())
    assert cache.get("ads~7").payload["ranking"] == ["a", "b"]


def test_size_is_checked():
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ConfigurationError, match="payload_cache"):
            PayloadCache(bad)  # type: ignore[arg-type]
