"""The store contract suite (:mod:`stores.test_contract`) on a :class:`ShardedStore` whose
every bandit has 3 shards, over Memory, SQLite (a file), Redis and the 3-node Redis Cluster.

A sharded bandit keeps the contract but for what only one log can give: ``EXCLUDED`` names the
tests that check it, and why (docs/scaling.md).
"""

from __future__ import annotations

import pytest

from stores import test_contract
from stores.backends import Backend
from stores.suites import suite_functions
from tsbandit.stores import ShardedStore, Store

_VERSION = ("a write returns the version of the shard it changed (scale: their sum), a read "
            "the sum of the shards' versions")
_ONE_LOG = ("foreign ids ('d1', 'm0') of one batch land on several shards: the batch is "
            "written shard by shard, its events are in each shard's order, not the batch's "
            "(the engine's batches are on one shard)")
EXCLUDED: dict[str, str] = {
    "test_add_exact_and_versioned": _VERSION,
    "test_scale": _VERSION,
    "test_replace_config_and_arrays": _VERSION,
    "test_claim_and_settle": "earliest deadline first holds within a shard, claims fill from "
                             "the shards in turn",
    "test_purge_oldest_first_in_batches": "oldest first holds within a shard, purges fill "
                                          "from the shards in turn",
    "test_overflowing_deltas_are_refused_and_change_nothing": (
        "overflow is refused per shard; a sum over the shards beyond 1.8e308 is not"),
    "test_put_pending_many_all_or_nothing": _ONE_LOG,
    "test_put_pending_many_is_put_pending_for_each": _ONE_LOG,
    "test_put_pending_many_large_and_concurrent": _ONE_LOG,
    "test_put_pending_many_if_at_writes_only_at_that_version": (
        "each shard has its own version: a sharded bandit refuses if_at (the engine writes "
        "its batches unconditionally, after a read), tested in test_sharded.py"),
}

globals().update(suite_functions(test_contract, EXCLUDED, {"store"}))

bandit = test_contract.bandit


@pytest.fixture
def store(backend: Backend) -> Store:
    return ShardedStore(backend.open(), default_shards=3)

