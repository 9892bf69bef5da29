"""The engine's bandit-keeping half: the store, the cached reads, bandits, arms and summaries.

:class:`EngineBase` is what :class:`~tsbandit.engine.Engine` adds decisions and rewards to:
creating, reading and deleting bandits, changing their arms for every worker, and the reads
(statistics, posterior summaries, the bandit as a library :class:`~tsbandit.Bandit`). Its
summaries are the :class:`~tsbandit.core.DecisionCore`'s, the same as a ``Bandit``'s.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..bandit import Bandit
from ..core import make_generators
from ..decision import split_decision_id
from ..errors import (
    BanditNotFoundError,
    ConfigurationError,
    LastArmError,
    UnknownArmError,
    VersionConflictError,
)
from ..metric_core import metric_summary
from ..policies.base import check_positive
from ..policies.stats import Stats
from ..stores.base import EventPage, Store
from ..stores.observed import StoreObserver
from ..stores.sharded import sharding_store
from .payloads import DEFAULT_PAYLOAD_CACHE, PayloadCache
from .spec import BanditSpec
from .state import BanditState, StateCache

if TYPE_CHECKING:
    from ..experiments.stopping import StoppingRule

__all__ = ["EngineBase"]

E = TypeVar("E", bound="EngineBase")

#: a new bandit's configuration version is drawn below this (each change adds one): two
#: bandits created under one name share it with probability 2**-31
_CONFIG_VERSION_START = 2**31


class EngineBase:
    """Bandits over a :class:`~tsbandit.stores.base.Store`: configuration, arms and reads.

    The parameters are :class:`~tsbandit.engine.Engine`'s (the class to use).
    """

    def __init__(self, store: Store, *, seed: int | np.random.SeedSequence | None = None,
                 clock: Callable[[], float] = time.time, max_staleness_ms: float = 0.0,
                 payload_cache: int = DEFAULT_PAYLOAD_CACHE) -> None:
        self.clock = clock
        self.max_staleness = check_positive("max_staleness_ms", max_staleness_ms,
                                            allow_zero=True) / 1000.0
        self._rng, self._side_rng = make_generators(seed)
        self._cache = StateCache(store, clock, self.max_staleness)
        self._lock = threading.Lock()  # generators and cache are not thread-safe
        #: this engine's recent decisions' payloads, so their rewards skip a read
        self._payloads = PayloadCache(payload_cache)

    @property
    def store(self) -> Store:
        """The store the engine reads and writes."""
        return self._cache.store

    @store.setter
    def store(self, store: Store) -> None:
        self._cache.store = store
        self._payloads.clear()

    def _forget(self, name: str) -> None:
        """Drop what this engine keeps of a bandit (deleted, or found unknown)."""
        self._cache.drop(name)
        self._payloads.drop_bandit(name)

    def _state(self, name: str, *, fresh: bool = False) -> BanditState:
        return self._cache.get(name, fresh=fresh)

    def _maybe_decay(self, spec: BanditSpec) -> None:
        if spec.half_life is not None:
            self.store.decay(spec.name, spec.half_life, self.clock())

    # ----- bandits ------------------------------------------------------------------------
    def create_bandit(self, spec: BanditSpec) -> BanditSpec:
        """Create a bandit in the store (``BanditExistsError`` if the name is taken)."""
        if spec.shards > 1 and sharding_store(self.store) is None:
            raise ConfigurationError(
                f"shards == {spec.shards} needs a sharding store: open the engine with "
                "Engine.open(url), or build it over ShardedStore(store)")
        stats = spec.model.init_stats(len(spec.arms))
        # a configuration version of its own (as decision ids are random): a bandit deleted
        # and created again under its name must not pass for the old one in the writes other
        # workers guard by the version they cached (decisions, rewards, arm changes)
        self.store.create_bandit(spec.name, spec.to_config(), dict(stats),
                                 config_version=secrets.randbelow(_CONFIG_VERSION_START))
        return spec

    def get_bandit(self, name: str) -> BanditSpec:
        """The bandit's specification as stored."""
        return BanditSpec.from_config(self.store.read(name).config)

    def list_bandits(self) -> list[str]:
        """Names of all bandits in the store."""
        return self.store.list_bandits()

    def delete_bandit(self, name: str) -> None:
        """Delete a bandit with its statistics, pending decisions and events."""
        self.store.delete_bandit(name)
        self._forget(name)

    # ----- arms ---------------------------------------------------------------------------
    def _change_arms(self, bandit: str,
                     edit: Callable[[BanditSpec, Stats], tuple[list[str], Stats]]) -> BanditSpec:
        """Replace the arm layout and statistics as ``edit`` derives them from a fresh read,
        guarded by the configuration version (retried when another worker changed it)."""
        for _ in range(5):
            state = self._state(bandit, fresh=True)
            spec = state.spec
            arms, stats = edit(spec, Stats(state.snapshot.arrays))
            # an arm that is new in the layout is a new incarnation from the next version on:
            # decisions made for an earlier arm of that name no longer teach it
            after = state.snapshot.config_version + 1
            since = {a: spec.arm_since.get(a, 0) if a in spec.arms else after for a in arms}
            gone = [i for i, a in enumerate(spec.arms) if a not in arms]
            # a several-metric bandit's per-arm costs and rule's arm indices follow the arms
            core = spec.core.with_arms(arms, gone[0] if gone else None)
            new = BanditSpec.from_config({**spec.to_config(), "arms": arms,
                                          "arm_since": since,
                                          "model": core.model.to_config(),
                                          "rule": core.rule.to_config()})
            try:
                self.store.replace(bandit, new.to_config(), dict(stats),
                                   expected_config_version=state.snapshot.config_version)
                return new
            except VersionConflictError:
                continue
        raise VersionConflictError(f"bandit {bandit!r} kept changing; retry")

    def add_arm(self, bandit: str, arm: str) -> BanditSpec:
        """Add an arm (prior only) to a bandit, atomically for all workers."""
        return self._change_arms(bandit, lambda spec, stats: (
            [*spec.arms, arm], stats.append_arms(spec.model.init_stats(1))))

    def retire_arm(self, bandit: str, arm: str) -> BanditSpec:
        """Remove an arm and its statistics. Its pending decisions are consumed, not learned:
        a later reward for one answers ``"arm_retired"`` (then ``"duplicate"``), also after the
        arm is added again, and the sweep settles them without the default reward."""
        def edit(spec: BanditSpec, stats: Stats) -> tuple[list[str], Stats]:
            if arm not in spec.arms:
                raise UnknownArmError(f"unknown arm {arm!r}; known arms: {list(spec.arms)}")
            if len(spec.arms) == 1:
                raise LastArmError(f"cannot retire {arm!r}: it is the last arm")
            keep = [i for i, a in enumerate(spec.arms) if a != arm]
            return [spec.arms[i] for i in keep], stats.take_arms(keep)

        return self._change_arms(bandit, edit)

    def fits_cached(self, bandit: str, context: Any = None,
                    eligible: Iterable[str] | None = None, k: int = 1) -> bool:
        """Whether a decision with these arguments is valid for this worker's cached
        configuration of ``bandit`` (no store I/O; False when nothing is cached).

        The service admits a request into a shared :meth:`decide_batch` only when it fits, so
        one bad request cannot fail the others.

        >>> from tsbandit.engine import BanditSpec, Engine
        >>> from tsbandit.stores import MemoryStore
        >>> engine = Engine(MemoryStore(), seed=0)
        >>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
        >>> _ = engine.decide("ads")
        >>> engine.fits_cached("ads", eligible=["a"]), engine.fits_cached("ads", k=3)
        (True, False)
        """
        cached = self._cache.peek(bandit)
        if cached is None:
            return False
        core = cached.spec.core
        try:
            core.eligible(eligible, k)
            if not core.model.contextual:
                return context is None
            if context is None:
                return False
            core.model.check_contexts([context])
        except (ValueError, KeyError, TypeError):  # the tree's errors derive from these
            return False
        return True

    # ----- reads --------------------------------------------------------------------------
    def statistics(self, bandit: str) -> tuple[BanditSpec, Stats, int]:
        """A fresh read: the bandit's specification, a copy of its statistics (with the decay
        accrued since the store last applied it) and the model version."""
        state = self._state(bandit, fresh=True)
        return state.spec, state.stats.copy(), int(state.snapshot.version)

    def to_bandit(self, bandit: str, *, seed: int | None = None) -> Bandit:
        """The bandit as a library :class:`~tsbandit.Bandit`: its arms, model, rule and
        propensity draws, with the statistics it has now (decay accrued so far included; the
        ``Bandit`` does not go on decaying by time). ``.to_dict()`` of it is what
        ``tsbandit evaluate --state`` takes, and ``Bandit.from_dict`` reads back.

        >>> from tsbandit.engine import BanditSpec, Engine
        >>> from tsbandit.stores import MemoryStore
        >>> engine = Engine(MemoryStore(), seed=0)
        >>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
        >>> d = engine.decide("ads"); engine.record_reward(d.decision_id, 1).status
        'applied'
        >>> round(engine.to_bandit("ads").posterior_mean()[d.arm], 4)  # Beta(2, 1)
        0.6667
        """
        spec, stats, version = self.statistics(bandit)
        fresh = Bandit(list(spec.arms), spec.model, spec.rule, seed=seed,
                       propensity_draws=spec.propensity_draws)
        state = fresh.to_dict()
        state["stats"] = stats.to_dict()
        state["n_updates"] = int(version)
        return Bandit.from_dict(state)

    def stats(self, bandit: str, context: Any = None, *, level: float = 0.95,
              n_draws: int = 4000) -> dict[str, Any]:
        """Per-arm posterior summary: mean, credible interval, pulls, rewards, P(best).

        For Beta models also ``alpha`` and ``beta``. Context-free models need no context.
        With several metrics ``arms`` summarizes the objective, and ``metrics``,
        ``objective`` and ``constraints`` are :func:`~tsbandit.metric_core.metric_summary`'s (every
        metric's posterior per arm, each constraint's probability of holding).
        """
        state = self._state(bandit, fresh=True)
        core = state.spec.core
        with self._lock:
            rows = core.summary(state.posterior, state.stats, self._side_rng, context, level,
                                n_draws)
            more = {} if state.spec.metrics is None else metric_summary(
                core, state.posterior, state.stats, self._side_rng, context, level, n_draws)
        return {"bandit": bandit, "model_version": state.snapshot.version, "level": level,
                "arms": [row.to_dict() for row in rows], **more}

    def health(self) -> dict[str, Any]:
        """The store's health: ``{"ok": bool, ...}`` (see :meth:`Store.health`); raises
        ``StoreUnavailableError`` when the store cannot be reached."""
        return self.store.health()

    def export_events(self, bandit: str, fp: IO[str]) -> int:
        """Write the bandit's event log as JSON Lines (for off-policy evaluation)."""
        return self.store.export_events(bandit, fp)

    def pending(self, decision_id: str) -> dict[str, Any]:
        """The stored pending decision (payload, deadline, status)."""
        bandit, _ = split_decision_id(decision_id)
        p = self.store.get_pending(bandit, decision_id)
        return {"decision_id": p.decision_id, "status": p.status, "deadline": p.deadline,
                **p.payload}

    # ----- the service's door: thin delegates, the code is in ops.py and experiments --------
    @classmethod
    def open(cls: type[E], url: str, *, observer: StoreObserver | None = None,
             seed: int | np.random.SeedSequence | None = None,
             clock: Callable[[], float] = time.time, max_staleness_ms: float = 0.0,
             **store_options: Any) -> E:
        """An engine over the store at ``url`` (``memory://``, ``sqlite:///path``,
        ``redis://...``; ``store_options`` such as ``retention`` go to the store), with every
        store call reported to ``observer`` when one is given (see
        :mod:`tsbandit.stores.observed`). The other parameters are the constructor's."""
        from .ops import open_store

        return cls(open_store(url, observer=observer, **store_options), seed=seed, clock=clock,
                   max_staleness_ms=max_staleness_ms)

    def observed(self: E, observer: StoreObserver) -> E:
        """This engine with its store calls reported to ``observer``: a twin sharing the
        store, streams and cache (see :func:`tsbandit.engine.ops.observed`)."""
        from .ops import observed

        return observed(self, observer)

    def close(self) -> None:
        """Close the store (release its connections)."""
        self.store.close()

    def events(self, bandit: str) -> Iterator[dict[str, Any]]:
        """The bandit's event log, oldest first, read lazily in pages
        (``BanditNotFoundError`` now for an unknown bandit)."""
        if not self.store.exists(bandit):
            raise BanditNotFoundError(f"no bandit named {bandit!r}")
        return self.store.iter_events(bandit)

    def read_events(self, bandit: str, *, after: str | None = None,
                    limit: int = 1000) -> EventPage:
        """At most ``limit`` events after the cursor ``after``, and the cursor to continue
        from (see :meth:`Store.read_events <tsbandit.stores.base.Store.read_events>`)."""
        return self.store.read_events(bandit, after=after, limit=limit)

    def report(self, bandit: str, *, rule: StoppingRule | None = None, level: float = 0.95,
               split: str | Sequence[float] | None = None, srm: bool = True,
               srm_threshold: float = 0.001, draws: int = 100_000,
               rng: np.random.Generator | None = None) -> dict[str, Any]:
        """The bandit read as a Bayesian A/B/n experiment, with the SRM check of its event
        log: :func:`tsbandit.experiments.bandit_report.bandit_report` (``rule``: a
        :class:`~tsbandit.experiments.StoppingRule`) over one fresh read."""
        from ..experiments.bandit_report import bandit_report

        spec, stats, version = self.statistics(bandit)
        return bandit_report(bandit, spec, stats, version,
                             lambda: self.store.iter_events(bandit), rule=rule, level=level,
                             split=split, srm=srm, srm_threshold=srm_threshold, draws=draws,
                             rng=rng)
