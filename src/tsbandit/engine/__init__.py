"""The engine: a bandit's configuration, its policy and its store, tied together.

The engine is what the service and any multi-process deployment use. Every worker holds an
:class:`Engine` over the same store; the bandit's configuration (arms, model, rule, priors,
reward window, default reward, decay half-life) lives **in the store**, so every worker sees the
same bandit. A decision is recorded as *pending* with its context and a deadline, so a reward
needs only the decision id; the store applies each reward **exactly once**.

>>> from tsbandit.engine import BanditSpec, Engine
>>> from tsbandit.stores import MemoryStore
>>> engine = Engine(MemoryStore(), seed=0)
>>> _ = engine.create_bandit(BanditSpec(name="offers", arms=["a", "b"]))
>>> d = engine.decide("offers")
>>> engine.record_reward(d.decision_id, 1).status
'applied'
>>> engine.record_reward(d.decision_id, 1).status
'duplicate'

Decision ids are ``<bandit>~<32 hex digits>``: the reward call finds its bandit from the id.

**Idempotent decisions.** ``decide(..., idempotency_key="k")`` (and ``decide_batch``) make a
retry safe: the decision id is derived from the key (``sha256``), so the store's atomic
"insert unless the id exists" (``put_pending_many``) is also the key -> decision mapping, on
every store and across workers, and it lives and expires with the decision (its reward window,
then the store's retention). A retry with the same key and the same request returns the
recorded decision (same id, arm, propensity; ``replayed=True``); the same key with another
request raises :class:`~tsbandit.errors.IdempotencyConflictError`.

>>> first = engine.decide("offers", idempotency_key="order-42")
>>> again = engine.decide("offers", idempotency_key="order-42")
>>> (again.decision_id, again.arm, again.replayed) == (first.decision_id, first.arm, True)
True

Layout: :mod:`~tsbandit.engine.spec` (:class:`BanditSpec`), :mod:`~tsbandit.engine.state`
(cached reads), :mod:`~tsbandit.engine.base` (bandits, arms, reads),
:mod:`~tsbandit.engine.engine` (decisions, rewards, the sweep),
:mod:`~tsbandit.engine.records` (what a decision records), :mod:`~tsbandit.engine.keys`
(idempotency keys), :mod:`~tsbandit.engine.ops` (opening a store by URL, observed or
not; a spec from configuration dicts; the optional kernels).
Decisions are :class:`~tsbandit.decision.RecordedDecision`: a
:class:`~tsbandit.decision.Decision` (what a :class:`~tsbandit.Bandit` returns) with its id.
Events are written through :mod:`tsbandit.events`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..decision import RecordedDecision, RewardResult, split_decision_id
from ..stores.observed import StoreObserver
from .engine import Engine, SweepResult
from .keys import IDEMPOTENCY_KEY_PATTERN, check_idempotency_key
from .ops import bandit_spec, kernels_status, load_kernels, open_store
from .spec import BanditSpec

#: Former names of :class:`~tsbandit.decision.RecordedDecision` and
#: :class:`~tsbandit.decision.RewardResult` (what ``decide`` and ``record_reward`` return).
EngineDecision = RecordedDecision
RewardOutcome = RewardResult

__all__ = ["IDEMPOTENCY_KEY_PATTERN", "BanditSpec", "Engine", "EngineDecision", "RewardOutcome",
           "StoppingRule", "StoreObserver", "SweepResult", "bandit_spec", "check_idempotency_key",
           "kernels_status", "load_kernels", "open_store", "split_decision_id"]

if TYPE_CHECKING:
    from ..experiments.stopping import StoppingRule


def __getattr__(name: str) -> Any:
    # StoppingRule (what Engine.report takes) is imported on first use: importing the
    # experiments package costs ~30 ms, which an engine that never reports need not pay
    if name == "StoppingRule":
        from ..experiments.stopping import StoppingRule

        return StoppingRule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
