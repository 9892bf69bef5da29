"""The engine's deciding and learning half: decisions, exactly-once rewards, the sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decision import (
    RecordedDecision,
    RewardResult,
    RewardStatus,
)
from ..errors import (
    BanditNotFoundError,
    StoreUnavailableError,
    TsbanditError,
)
from ..events import ExpiredEvent, RewardEvent
from ..policies.ranking import RankingModel
from ..policies.stats import Stats
from ..stores.base import ClaimedDecision, NewDecision
from .base import EngineBase
from .deciding import decide
from .keys import check_idempotency_key
from .metric_records import expired_metric
from .rewards import apply_records, record_rewards
from .slot_records import expired_slot
from .spec import BanditSpec
from .state import BanditState

__all__ = ["Engine", "SweepResult"]


@dataclass(frozen=True)
class SweepResult:
    """What :meth:`Engine.sweep` did to one bandit: decisions ``settled`` by the expiry sweep,
    consumed decisions ``purged`` after their retention, events ``trimmed`` from the log,
    expired sticky ``assignments`` deleted."""

    settled: int = 0
    purged: int = 0
    trimmed: int = 0
    assignments: int = 0


def sweep_each(names: list[str], sweep: Callable[[str], SweepResult],
               deleted: Callable[[str], None], *, one: bool) -> dict[str, SweepResult]:
    """``sweep(name)`` of every bandit. Sweeping all (not ``one``), a bandit deleted meanwhile
    is skipped (``deleted(name)``), and one that cannot be swept (a configuration stored by an
    older version outside today's bounds, a pending reward that would overflow) does not stop
    the others: they are swept, then its error is raised, naming every bandit skipped. An
    unreachable store stops everything."""
    out: dict[str, SweepResult] = {}
    failures: list[tuple[str, TsbanditError]] = []
    for name in names:
        try:
            out[name] = sweep(name)
        except BanditNotFoundError:
            if one:
                raise
            deleted(name)
        except StoreUnavailableError:
            raise
        except TsbanditError as exc:
            if one:
                raise
            failures.append((name, exc))
    if failures:
        first, error = failures[0]
        raise type(error)(
            f"the sweep skipped {len(failures)} bandit(s) "
            f"{[n for n, _ in failures]} (the others were swept); {first!r}: {error}"
        ) from error
    return out


class Engine(EngineBase):
    """Decide and learn online over a :class:`~tsbandit.stores.base.Store`.

    Parameters
    ----------
    store
        Where configuration, statistics, pending decisions and events live.
    seed
        Seed of this worker's decision stream (``None``: fresh entropy — the right choice for
        several workers, which must not share a stream).
    clock
        Returns the time in epoch seconds (tests pass a fake clock).
    max_staleness_ms
        A worker may reuse a snapshot this old to save a round trip (0: always read).
    payload_cache
        How many of its recent decisions' payloads the engine keeps, so that their rewards
        skip reading the pending record (:mod:`tsbandit.engine.payloads`; 0: none).

    Bandits, arms and reads are :class:`~tsbandit.engine.base.EngineBase`'s.
    """

    # ----- decisions ----------------------------------------------------------------------
    def decide(self, bandit: str, context: Any = None, eligible: Iterable[str] | None = None,
               k: int = 1, user_id: str | None = None, *,
               idempotency_key: str | None = None) -> RecordedDecision:
        """Choose an arm (or rank ``k`` arms) for one user and record the pending decision.

        With ``idempotency_key`` a retry of the same request returns the recorded decision
        instead of making a new one (see the module docstring).
        """
        return self.decide_batch(bandit, None if context is None else [context], eligible, k,
                                 None if user_id is None else [user_id], n=1,
                                 idempotency_key=idempotency_key)[0]

    def decide_batch(self, bandit: str, contexts: Any = None,
                     eligible: Iterable[str] | None = None, k: int = 1,
                     user_ids: Sequence[str | None] | None = None,
                     n: int | None = None, *,
                     idempotency_key: str | None = None) -> list[RecordedDecision]:
        """Decisions for many users in one call (one store read, vectorized choice, one
        store write of all the pending decisions: all are recorded, or none). When the
        engine has the bandit cached, the read is left out: the write records the decisions
        only if the bandit is still at the cached version (:mod:`tsbandit.engine.deciding`),
        so they are drawn from the posterior current when recorded, in one round trip.

        Give ``contexts`` ``(n, d)`` for a contextual model, or ``n`` for a context-free one.
        With ``idempotency_key`` a retry of the same request (same contexts, eligible arms,
        ``k``, user ids and count) returns the decisions recorded by the first (``replayed``)
        instead of new ones, as long as they are kept (reward window + retention); the same
        key with another request raises :class:`IdempotencyConflictError`.
        """
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        return decide(self, bandit, contexts, eligible, k, user_ids, n, idempotency_key)

    def _keep_payloads(self, bandit: str, items: list[NewDecision],
                       out: list[RecordedDecision]) -> None:
        if len(items) == len(out):  # one record per decision
            self._payloads.put_many(bandit, ((i.decision_id, i.payload, i.deadline)
                                             for i in items))
            return
        mine = {d.decision_id for d in out}  # the decisions' own records (metrics, slots)
        self._payloads.put_many(bandit, ((i.decision_id, i.payload, i.deadline)
                                         for i in items if i.decision_id in mine))

    # ----- rewards ------------------------------------------------------------------------
    def record_reward(self, decision_id: str, reward: Any, *,
                      slot: int | None = None) -> RewardResult:
        """Apply a reward to a pending decision, exactly once.

        A repeat returns ``status="duplicate"`` and changes nothing; an unknown id raises
        :class:`DecisionNotFoundError`; a reward after the window raises
        :class:`DecisionExpiredError`; a reward outside the model's domain raises
        :class:`InvalidRewardError` and changes nothing.

        With several metrics ``reward`` is ``{metric: value}``, any subset of the metrics:
        each metric of a decision is applied exactly once, whenever it arrives
        (:mod:`tsbandit.engine.metric_records`; the result's ``metrics`` says each one's
        status).

        A ranking model (position-based, cascade) learns from every slot of a ranking: give
        the ``slot`` a reward is for (default 0), or one reward per slot as a list (None for a
        slot not known yet); each slot is applied exactly once
        (:mod:`tsbandit.engine.slot_records`; the result's ``slots``). Other models learn from
        the first slot only: another ``slot`` raises :class:`InvalidSlotError`.
        """
        res = record_rewards(self, [(decision_id, reward, slot)])[0]
        if isinstance(res, TsbanditError):
            raise res
        return res

    def record_rewards(self, items: Sequence[tuple[str, Any] | tuple[str, Any, int | None]]
                       ) -> list[RewardResult | TsbanditError]:
        """:meth:`record_reward` for each ``(decision_id, reward)`` or ``(decision_id, reward,
        slot)`` item, answered in order: its :class:`RewardResult`, or the error
        :meth:`record_reward` would raise for it (returned, not raised). Each item is applied
        at most once, and one refused item never fails the others; an id given twice is
        applied by its first item, the next answers ``"duplicate"``.

        Rewards of decisions this engine made skip reading the pending record (their payloads
        are cached); for a bandit with one metric the batch costs at most one read of the
        others' records and one atomic write of all (:mod:`tsbandit.engine.rewards`).

        >>> from tsbandit.stores import MemoryStore
        >>> engine = Engine(MemoryStore(), seed=0)
        >>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
        >>> d = engine.decide("ads")
        >>> [r.status for r in engine.record_rewards([(d.decision_id, 1), (d.decision_id, 0)])]
        ['applied', 'duplicate']
        """
        return record_rewards(self, items)

    def _apply_record(self, state: BanditState, record_id: str,
                      build: Callable[[BanditState], tuple[dict[str, np.ndarray] | None,
                                                           RewardEvent]],
                      outcome: float | None = None) -> tuple[BanditState, RewardStatus, int]:
        """Consume one pending record exactly once with what ``build(state)`` makes of it
        (:func:`~tsbandit.engine.rewards.apply_records` of one job, its error raised). Returns
        the state used, the status (``"arm_retired"`` for a consumed record that taught
        nothing) and the version."""
        state, (res,) = apply_records(self, state, [(record_id, build, outcome)])
        if isinstance(res, TsbanditError):
            raise res
        return state, *res

    def sweep_expired(self, bandit: str | None = None, *, limit: int = 1000) -> int:
        """Settle decisions whose window passed, applying the default reward (if any) once.

        Safe with many workers sweeping at the same time. Returns the number settled.
        """
        names = [bandit] if bandit is not None else self.list_bandits()
        total = 0
        for name in names:
            state = self._state(name, fresh=True)

            def deltas_fn(claim: ClaimedDecision, spec: BanditSpec = state.spec,
                          stats: Stats = state.stats
                          ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
                if spec.metrics is not None:
                    return expired_metric(spec, stats, self.store, claim, self.clock())
                if isinstance(spec.model, RankingModel):
                    return expired_slot(spec, stats, claim, self.clock())
                p = claim.payload
                arm, made_at = p["arm"], p.get("config_version")
                learns = spec.learns(arm, made_at)
                deltas = None
                if learns and spec.default_reward is not None:
                    deltas = spec.deltas(stats, arm, float(spec.default_reward),
                                         p.get("context"))
                event = ExpiredEvent(claim.decision_id, self.clock(), spec.name, arm,
                                     spec.default_reward, p.get("context"),
                                     p.get("propensity"), arm_retired=not learns)
                return deltas, event.to_dict()

            total += self.store.sweep_expired(name, self.clock(), deltas_fn, limit=limit,
                                              config_version=state.snapshot.config_version)
        return total

    def sweep(self, bandit: str | None = None, *, limit: int = 1000, purge: bool = True,
              max_rounds: int = 100) -> dict[str, SweepResult]:
        """Keep the store bounded: settle every expired decision (:meth:`sweep_expired`, in
        rounds of ``limit`` until one comes back short, at most ``max_rounds``), then, with
        ``purge``, delete consumed decisions past the store's retention and trim the event log
        to its ``events_maxlen`` (:meth:`Store.purge <tsbandit.stores.base.Store.purge>`).

        Every worker may call it at any time: settling is exactly-once and purging idempotent.
        Returns a :class:`SweepResult` per bandit swept (all bandits when ``bandit`` is None;
        one deleted meanwhile is skipped). Sweeping all, a bandit that cannot be swept (its
        stored configuration refused, say) does not stop the others: they are swept, then its
        error is raised, naming every bandit skipped.

        >>> from tsbandit.stores import MemoryStore
        >>> now = [0.0]
        >>> engine = Engine(MemoryStore(retention=10.0), seed=0, clock=lambda: now[0])
        >>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"], reward_window=1,
        ...                                     default_reward=0))
        >>> _ = engine.decide_batch("ads", n=3)
        >>> now[0] = 2.0
        >>> engine.sweep()  # settled now; purged once deadline + retention has passed
        {'ads': SweepResult(settled=3, purged=0, trimmed=0, assignments=0)}
        >>> now[0] = 12.0
        >>> engine.sweep()
        {'ads': SweepResult(settled=0, purged=3, trimmed=0, assignments=0)}
        """
        names = [bandit] if bandit is not None else self.list_bandits()
        rounds = max(int(max_rounds), 1)
        return sweep_each(names, lambda name: self._sweep_one(name, limit, purge, rounds),
                          self._cache.drop, one=bandit is not None)

    def _sweep_one(self, name: str, limit: int, purge: bool, rounds: int) -> SweepResult:
        settled = 0
        for _ in range(rounds):
            n = self.sweep_expired(name, limit=limit)
            settled += n
            if n < limit:
                break
        purged = trimmed = assigned = 0
        if purge:
            for _ in range(rounds):
                res = self.store.purge(name, self.clock(), limit=10 * limit)
                purged += res.decisions
                trimmed += res.events
                assigned += res.assignments
                if res.decisions < 10 * limit and res.assignments < 10 * limit:
                    break
        return SweepResult(settled, purged, trimmed, assigned)
