"""A worker's view of a bandit read from its store: configuration, statistics, posterior."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..policies.choice_sample import ChoiceSample
from ..policies.stats import Stats
from ..stores.base import Snapshot, Store
from .spec import BanditSpec

__all__ = ["BanditState", "StateCache"]

_FIRST_SLOT_KEYS = 64  # eligible sets remembered per model version
_LOGGED_ALLOCATION_ARMS = 64  # decision events carry every arm's probability up to this many arms
#: seconds a cached state is decided from, its writes verified by version, before it is read
#: again: a bandit created at configuration version 0 (by a store's own create_bandit, or an
#: engine before it drew one) and another created anew under its name can be at the very
#: (version, config_version) the cache holds, which no version check tells apart -- a read
#: does (its configuration differs)
UNREAD_TRUST_SECONDS = 1.0


@dataclass
class BanditState:
    """One read of a bandit: its specification, the store's snapshot, the statistics (with the
    decay accrued since the store applied it), the posterior, when it was last known current
    (``read_at``: read, or its version found unchanged by a write) and when it was last read
    (``fetched_at``)."""

    spec: BanditSpec
    snapshot: Snapshot
    stats: Stats
    posterior: Any
    read_at: float
    fetched_at: float
    #: eligible mask (bytes, or None for all arms) -> first-slot choice probabilities (K,) under
    #: this posterior; context-free bandits only (see Engine.decide_batch)
    first_slot_cache: dict[bytes | None, tuple[np.ndarray, dict[str, float] | None]] = field(
        default_factory=dict)
    #: eligible mask -> the Thompson draws behind the latest first-slot estimate, shared by the
    #: states of one configuration: a later posterior reweights them (DecisionCore.
    #: first_choice_probabilities) instead of drawing afresh
    choice_samples: dict[bytes | None, ChoiceSample] = field(default_factory=dict)
    #: this worker has moved the bandit past this version itself (a reward it applied): the
    #: next decision reads rather than drawing from this state a batch its write would refuse
    moved: bool = False

    def first_slot(self, side_rng: np.random.Generator, mask: np.ndarray | None
                   ) -> tuple[np.ndarray, dict[str, float] | None]:
        """Propensity of each arm being chosen first, floored like ``batch_propensities``,
        and the unfloored probabilities as ``{arm: p}`` (arms with ``p > 0``; ``None`` past
        64 arms) for the decision event.

        For a context-free bandit it depends only on the posterior (one model version) and the
        eligible set, so it is estimated once per version and eligible set and reused by every
        decision made from that same posterior -- each decision's propensity is still the
        probability of its choice under the posterior it was drawn from. (Monte Carlo with
        ``propensity_draws`` draws for Thompson sampling -- an earlier version's draws,
        importance-reweighted, while they keep 90% of their effective size; exact for
        deterministic rules.) The event logs every arm's probability, not only the chosen
        one's, because that is what checks the allocation of a bandit of more than two arms
        (the report's SRM check): the Monte-Carlo estimate is unbiased before the floor (a
        reweighted one consistent, its bias of order 1 / draws), so it is logged unfloored.
        Called with the engine lock held.
        """
        key = None if mask is None else mask.tobytes()
        hit = self.first_slot_cache.get(key)
        if hit is None:
            core = self.spec.core
            raw, sample = core.first_choice_probabilities(
                self.posterior, self.stats, side_rng, mask, self.choice_samples.get(key))
            if sample is not None and (key in self.choice_samples
                                       or len(self.choice_samples) < _FIRST_SLOT_KEYS):
                self.choice_samples[key] = sample
            allocation = None if core.n_arms > _LOGGED_ALLOCATION_ARMS else {
                a: float(p) for a, p in zip(core.arms, raw.tolist(), strict=True) if p > 0}
            hit = (np.maximum(raw, core.propensity_floor()), allocation)
            if len(self.first_slot_cache) < _FIRST_SLOT_KEYS:
                self.first_slot_cache[key] = hit
        return hit


class StateCache:
    """The bandits a worker has read, re-read when their snapshot is older than
    ``max_staleness`` seconds (0: on every call) or asked ``fresh``; an unchanged version keeps
    the statistics and posterior computed before."""

    def __init__(self, store: Store, clock: Callable[[], float], max_staleness: float) -> None:
        self.store = store
        self.clock = clock
        self.max_staleness = max_staleness
        self._states: dict[str, BanditState] = {}

    def sharing(self, store: Store) -> StateCache:
        """A cache over ``store`` that shares this one's states (a twin engine's: the same
        bandits read through another door, e.g. an observed store over the same data)."""
        twin = StateCache(store, self.clock, self.max_staleness)
        twin._states = self._states
        return twin

    def peek(self, name: str) -> BanditState | None:
        """The cached state of ``name``, however old (None when never read)."""
        return self._states.get(name)

    def drop(self, name: str) -> None:
        """Forget ``name`` (deleted, or found missing)."""
        self._states.pop(name, None)

    def get(self, name: str, *, fresh: bool = False) -> BanditState:
        """The state of ``name``: cached if recent enough (and not ``fresh``), else read."""
        cached = self._states.get(name)
        if not fresh and cached is not None and self.recent(cached):
            return cached
        return self.install(name, self.store.read(name))

    def recent(self, state: BanditState) -> bool:
        """``state`` is within ``max_staleness``: usable as it is, unverified."""
        return (self.max_staleness > 0
                and time.monotonic() - state.read_at <= self.max_staleness)

    def trusted(self, name: str) -> BanditState | None:
        """The cached state of ``name`` if it was read within :data:`UNREAD_TRUST_SECONDS`
        (its configuration is then taken for the bandit's by a write guarded by version
        only), else None."""
        cached = self._states.get(name)
        if cached is None or time.monotonic() - cached.fetched_at > UNREAD_TRUST_SECONDS:
            return None
        return cached

    def unverified(self, name: str) -> BanditState | None:
        """The cached state of ``name`` when :meth:`get` would read the store again (older
        than ``max_staleness``), for a caller that verifies its version in the write it makes
        instead (``put_pending_many(..., if_at=...)``); None when never read, recent, moved,
        or not :meth:`trusted`."""
        cached = self.trusted(name)
        if cached is None or cached.moved or self.recent(cached):
            return None
        return cached

    def moved(self, name: str, version: int) -> None:
        """This worker's own write left ``name`` at ``version``: a cached state of another
        version is known to be out of date (see :attr:`BanditState.moved`)."""
        cached = self._states.get(name)
        if cached is not None and cached.snapshot.version != version:
            cached.moved = True

    def verified(self, state: BanditState) -> None:
        """``state``'s version was just found current by a write: as good as a read now."""
        state.read_at = time.monotonic()

    def install(self, name: str, snap: Snapshot) -> BanditState:
        """The state of the snapshot ``snap`` of ``name`` just read, cached: an unchanged
        version keeps the statistics and posterior computed before.

        Unchanged means the same version, configuration version and configuration (bandits
        created at configuration version 0 share the versions with any bandit created anew
        under their name at 0)."""
        now = time.monotonic()
        cached = self._states.get(name)
        if cached is not None and (cached.snapshot.config_version != snap.config_version
                                   or cached.snapshot.config != snap.config):
            cached = None  # another configuration: nothing of it is kept
        if cached is not None and cached.snapshot.version == snap.version:
            cached.read_at = cached.fetched_at = now
            cached.snapshot = snap
            cached.moved = False
            return cached
        spec = cached.spec if cached is not None else BanditSpec.from_config(snap.config)
        stats = Stats({k: np.array(v) for k, v in snap.arrays.items()})
        if spec.half_life is not None and snap.decayed_at is not None:
            # the decay accrued since the store last applied it, for reading only
            elapsed = max(self.clock() - snap.decayed_at, 0.0)
            stats = spec.model.decay(stats, 0.5 ** (elapsed / spec.half_life))
        state = BanditState(spec, snap, stats, spec.model.posterior(stats), now, now)
        if cached is not None:  # the same configuration
            state.choice_samples = cached.choice_samples
        self._states[name] = state
        return state
