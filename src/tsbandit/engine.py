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
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from .bandit import Bandit, _check_names, make_generators
from .errors import (
    BanditNotFoundError,
    ConfigurationError,
    DecisionExistsError,
    DecisionNotFoundError,
    EligibilityError,
    IdempotencyConflictError,
    InvalidContextError,
    LastArmError,
    SerializationError,
    StoreUnavailableError,
    TsbanditError,
    UnknownArmError,
    VersionConflictError,
)
from .policies.base import RewardModel, check_positive
from .policies.registry import model_from_config, rule_from_config
from .policies.rules import SelectionRule, ThompsonSampling, batch_propensities
from .policies.stats import Stats
from .stores.base import ClaimedDecision, EventPage, NewDecision, Snapshot, Store
from .stores.observed import StoreObserver

if TYPE_CHECKING:
    from .experiments.stopping import StoppingRule

__all__ = ["IDEMPOTENCY_KEY_PATTERN", "BanditSpec", "Engine", "EngineDecision", "RewardOutcome",
           "StoreObserver", "SweepResult", "bandit_spec", "check_idempotency_key",
           "kernels_status", "load_kernels", "open_store"]

CONFIG_FORMAT = 1
_ID_SEP = "~"


@dataclass(frozen=True)
class BanditSpec:
    """Everything that defines a bandit; stored as its configuration.

    Parameters
    ----------
    name
        Bandit name (letters, digits and ``_.:@+=-``).
    arms
        Arm names.
    model, rule
        Reward model (default Beta-Bernoulli) and selection rule (default Thompson sampling).
    reward_window
        Seconds a decision waits for its reward; later rewards are refused as expired.
    default_reward
        Reward applied to decisions whose window passed without one (``None``: nothing learned).
    half_life
        Seconds for the statistics' weight to halve (non-stationary bandits), or ``None``.
    propensity_draws
        Monte-Carlo draws for Thompson-sampling propensities.
    arm_since
        Arm -> the configuration version at which it was last (re-)added (arms absent: 0, there
        from the start). A decision made at an older configuration version was made for an
        earlier incarnation of the arm (retired since): its reward is consumed, not learned.
        Kept by :meth:`Engine.add_arm` / :meth:`Engine.retire_arm`.
    """

    name: str
    arms: Sequence[str]
    model: RewardModel = field(default_factory=lambda: model_from_config({"kind": "beta"}))
    rule: SelectionRule = field(default_factory=ThompsonSampling)
    reward_window: float = 86_400.0
    default_reward: float | None = None
    half_life: float | None = None
    propensity_draws: int = 1000
    arm_since: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", tuple(_check_names(self.arms)))
        since = {str(a): int(v) for a, v in dict(self.arm_since).items()
                 if a in self.arms and int(v) > 0}
        object.__setattr__(self, "arm_since", MappingProxyType(since))
        check_positive("reward_window", self.reward_window)
        if self.half_life is not None:
            check_positive("half_life", self.half_life)
            if not self.model.additive:
                raise ConfigurationError(
                    f"half_life needs additive statistics; {type(self.model).__name__} has none")
        if self.default_reward is not None:
            self.model.check_reward(self.default_reward)
        if isinstance(self.propensity_draws, bool) or int(self.propensity_draws) < 1:
            raise ConfigurationError(
                f"propensity_draws == {self.propensity_draws!r}, must be an integer >= 1")

    def to_config(self) -> dict[str, Any]:
        """JSON-safe configuration (what the store keeps)."""
        return {
            "format": CONFIG_FORMAT,
            "name": self.name,
            "arms": list(self.arms),
            "model": self.model.to_config(),
            "rule": self.rule.to_config(),
            "reward_window": float(self.reward_window),
            "default_reward": self.default_reward,
            "half_life": self.half_life,
            "propensity_draws": int(self.propensity_draws),
            **({"arm_since": dict(self.arm_since)} if self.arm_since else {}),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BanditSpec:
        """Inverse of :meth:`to_config`."""
        if config.get("format") != CONFIG_FORMAT:
            raise SerializationError(f"unsupported bandit configuration format "
                                     f"{config.get('format')!r}")
        return cls(
            name=config["name"], arms=config["arms"], model=model_from_config(config["model"]),
            rule=rule_from_config(config["rule"]), reward_window=config["reward_window"],
            default_reward=config.get("default_reward"), half_life=config.get("half_life"),
            propensity_draws=config.get("propensity_draws", 1000),
            arm_since=config.get("arm_since") or {},
        )

    def learns(self, arm: str, config_version: int | None) -> bool:
        """Whether a decision for ``arm`` made at ``config_version`` still teaches this bandit:
        the arm exists and was not retired (and re-added) since the decision was made."""
        if arm not in self.arms:
            return False
        return int(config_version or 0) >= self.arm_since.get(arm, 0)


@dataclass(frozen=True)
class EngineDecision:
    """A recorded decision: reward it with :meth:`Engine.record_reward` and its id."""

    decision_id: str
    bandit: str
    arm: str
    ranking: tuple[str, ...]
    propensity: float
    position_propensities: tuple[float, ...]
    model_version: int
    timestamp: float
    deadline: float
    #: True when an idempotency key found this decision already recorded (not in ``to_dict``)
    replayed: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        d = dict(self.__dict__)
        del d["replayed"]
        d["ranking"] = list(self.ranking)
        d["position_propensities"] = list(self.position_propensities)
        return d


@dataclass(frozen=True)
class RewardOutcome:
    """What :meth:`Engine.record_reward` did: ``"applied"`` (learned), ``"duplicate"``
    (already consumed; nothing changed) or ``"arm_retired"`` (the decision's arm was retired
    after the decision -- perhaps re-added since: the reward is consumed, not learned)."""

    decision_id: str
    bandit: str
    arm: str
    status: Literal["applied", "duplicate", "arm_retired"]
    model_version: int

    @property
    def duplicate(self) -> bool:
        """True when the decision had already been rewarded (nothing changed)."""
        return self.status == "duplicate"


@dataclass(frozen=True)
class SweepResult:
    """What :meth:`Engine.sweep` did to one bandit: decisions ``settled`` by the expiry sweep,
    consumed decisions ``purged`` after their retention, events ``trimmed`` from the log."""

    settled: int = 0
    purged: int = 0
    trimmed: int = 0


@dataclass
class _Cached:
    spec: BanditSpec
    snapshot: Snapshot
    stats: Stats
    posterior: Any
    read_at: float
    #: eligible mask (bytes, or None for all arms) -> first-slot choice probabilities (K,) under
    #: this posterior; context-free bandits only (see Engine.decide_batch)
    first_slot: dict[bytes | None, tuple[np.ndarray, dict[str, float] | None]] = field(
        default_factory=dict)


_FIRST_SLOT_KEYS = 64  # eligible sets remembered per model version
_LOGGED_ALLOCATION_ARMS = 64  # decision events carry every arm's probability up to this many arms


#: An idempotency key: 1-255 printable ASCII characters, no spaces (the service's header).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def check_idempotency_key(key: Any) -> str:
    """``key`` if it is 1-255 printable ASCII characters without spaces, else
    :class:`ConfigurationError`."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY_RE.match(key):
        raise ConfigurationError(f"idempotency key == {key!r}, must be 1-255 printable ASCII "
                                 "characters without spaces")
    return key


def _keyed_tokens(key: str, count: int) -> list[str]:
    """Decision-id tokens (32 hex digits) derived from an idempotency key, one per decision."""
    return [hashlib.sha256(f"tsbandit-idempotency\0{key}\0{i}".encode()).hexdigest()[:32]
            for i in range(count)]


def split_decision_id(decision_id: str) -> tuple[str, str]:
    """``(bandit, token)`` of a decision id, or :class:`DecisionNotFoundError`."""
    if not isinstance(decision_id, str):
        raise DecisionNotFoundError(f"decision id {decision_id!r} is not a string")
    bandit, sep, token = decision_id.rpartition(_ID_SEP)
    if not sep or not bandit or len(token) != 32:
        raise DecisionNotFoundError(f"unknown decision id {decision_id!r}")
    return bandit, token


class Engine:
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
    """

    def __init__(self, store: Store, *, seed: int | np.random.SeedSequence | None = None,
                 clock: Callable[[], float] = time.time, max_staleness_ms: float = 0.0) -> None:
        self.store = store
        self.clock = clock
        self.max_staleness = check_positive("max_staleness_ms", max_staleness_ms,
                                            allow_zero=True) / 1000.0
        self._rng, self._side_rng = make_generators(seed)
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()  # generators and cache are not thread-safe

    # ----- bandits ------------------------------------------------------------------------
    def create_bandit(self, spec: BanditSpec) -> BanditSpec:
        """Create a bandit in the store (``BanditExistsError`` if the name is taken)."""
        stats = spec.model.init_stats(len(spec.arms))
        self.store.create_bandit(spec.name, spec.to_config(), dict(stats))
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
        self._cache.pop(name, None)

    # ----- state --------------------------------------------------------------------------
    def _state(self, name: str, *, fresh: bool = False) -> _Cached:
        now = time.monotonic()
        cached = self._cache.get(name)
        if (not fresh and cached is not None and self.max_staleness > 0
                and now - cached.read_at <= self.max_staleness):
            return cached
        snap = self.store.read(name)
        if (cached is not None and cached.snapshot.version == snap.version
                and cached.snapshot.config_version == snap.config_version):
            cached.read_at = now
            cached.snapshot = snap
            return cached
        spec = (cached.spec if cached is not None
                and cached.snapshot.config_version == snap.config_version
                else BanditSpec.from_config(snap.config))
        stats = Stats({k: np.array(v) for k, v in snap.arrays.items()})
        if spec.half_life is not None and snap.decayed_at is not None:
            # the decay accrued since the store last applied it, for reading only
            elapsed = max(self.clock() - snap.decayed_at, 0.0)
            stats = spec.model.decay(stats, 0.5 ** (elapsed / spec.half_life))
        state = _Cached(spec, snap, stats, spec.model.posterior(stats), now)
        self._cache[name] = state
        return state

    def _maybe_decay(self, spec: BanditSpec) -> None:
        if spec.half_life is not None:
            self.store.decay(spec.name, spec.half_life, self.clock())

    # ----- decisions ----------------------------------------------------------------------
    def _context(self, spec: BanditSpec, context: Any) -> np.ndarray | None:
        return spec.model.check_contexts(context)

    def _mask(self, spec: BanditSpec, eligible: Iterable[str] | None, k: int) -> np.ndarray | None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise EligibilityError(f"k == {k!r}, must be an integer >= 1")
        if eligible is None:
            if k > len(spec.arms):
                raise EligibilityError(f"k == {k} but the bandit has {len(spec.arms)} arms")
            return None
        items = list(eligible)
        if not items:
            raise EligibilityError("eligible arms are empty; omit them for all arms")
        index = {a: i for i, a in enumerate(spec.arms)}
        mask = np.zeros(len(spec.arms), dtype=bool)
        for a in items:
            if a not in index:
                raise EligibilityError(f"eligible arm {a!r} is unknown; known arms: "
                                       f"{list(spec.arms)}")
            mask[index[a]] = True
        if k > int(mask.sum()):
            raise EligibilityError(f"k == {k} but only {int(mask.sum())} arms are eligible")
        return mask

    def fits_cached(self, bandit: str, context: Any = None,
                    eligible: Iterable[str] | None = None, k: int = 1) -> bool:
        """Whether a decision with these arguments is valid for this worker's cached
        configuration of ``bandit`` (no store I/O; False when nothing is cached).

        The service admits a request into a shared :meth:`decide_batch` only when it fits, so
        one bad request cannot fail the others.

        >>> from tsbandit.stores import MemoryStore
        >>> engine = Engine(MemoryStore(), seed=0)
        >>> _ = engine.create_bandit(BanditSpec(name="ads", arms=["a", "b"]))
        >>> _ = engine.decide("ads")
        >>> engine.fits_cached("ads", eligible=["a"]), engine.fits_cached("ads", k=3)
        (True, False)
        """
        cached = self._cache.get(bandit)
        if cached is None:
            return False
        spec = cached.spec
        try:
            self._mask(spec, eligible, k)
            if not spec.model.contextual:
                return context is None
            if context is None:
                return False
            spec.model.check_contexts([context])
        except (ValueError, KeyError, TypeError):  # the tree's errors derive from these
            return False
        return True

    def decide(self, bandit: str, context: Any = None, eligible: Iterable[str] | None = None,
               k: int = 1, user_id: str | None = None, *,
               idempotency_key: str | None = None) -> EngineDecision:
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
                     idempotency_key: str | None = None) -> list[EngineDecision]:
        """Decisions for many users in one call (one store read, vectorized choice, one
        store write of all the pending decisions: all are recorded, or none).

        Give ``contexts`` ``(n, d)`` for a contextual model, or ``n`` for a context-free one.
        With ``idempotency_key`` a retry of the same request (same contexts, eligible arms,
        ``k``, user ids and count) returns the decisions recorded by the first (``replayed``)
        instead of new ones, as long as they are kept (reward window + retention); the same
        key with another request raises :class:`IdempotencyConflictError`.
        """
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        state = self._state(bandit)
        spec = state.spec
        model = spec.model
        if model.contextual:
            x = model.check_contexts(contexts)
            assert x is not None
            count = x.shape[0]
        else:
            if contexts is not None and any(c is not None for c in contexts):
                raise InvalidContextError(f"bandit {bandit!r} takes no context")
            x = None
            count = 1 if n is None else int(n)
            if count < 1:
                raise ConfigurationError(f"n == {n!r}, must be >= 1")
        if user_ids is not None and len(user_ids) != count:
            raise ConfigurationError(f"got {len(user_ids)} user ids for {count} decisions")
        mask = self._mask(spec, eligible, k)
        with self._lock:
            if count == 1 and k == 1 and mask is None:
                # one user, every arm: the rule's single-decision path (the same choice from
                # the same random numbers; compiled kernels when tsbandit[fast] is installed)
                one = spec.rule.choose_one(model, state.posterior, state.stats, self._rng,
                                           None if x is None else x[0])
                chosen = np.array([[one]])
            else:
                chosen = spec.rule.choose(model, state.posterior, state.stats, self._rng, x,
                                          mask, k, size=None if x is not None else count)
            allocation = None
            if x is None and k == 1:
                first, allocation = self._first_slot(state, mask)
                probs = first[chosen]
            else:
                probs = batch_propensities(spec.rule, model, state.posterior, state.stats,
                                           chosen, self._side_rng, x, mask,
                                           spec.propensity_draws)
        now = self.clock()
        deadline = now + spec.reward_window
        out = []
        items = []
        keyed: dict[str, Any] = {}
        tokens: list[str] = []
        if idempotency_key is not None:
            tokens = _keyed_tokens(idempotency_key, count)
            request = json.dumps(
                [count, None if x is None else x.tolist(), k,
                 None if mask is None else [a for a, m in zip(spec.arms, mask, strict=True)
                                            if m],
                 None if user_ids is None else list(user_ids)], separators=(",", ":"))
            keyed["request"] = hashlib.sha256(request.encode()).hexdigest()[:32]
            keyed["model_version"] = state.snapshot.version
        for i in range(count):
            ranking = tuple(spec.arms[j] for j in chosen[i])
            did = f"{bandit}{_ID_SEP}{tokens[i] if tokens else uuid.uuid4().hex}"
            ctx = None if x is None else [float(v) for v in x[i]]
            pp = tuple(float(p) for p in probs[i])
            payload = {"arm": ranking[0], "ranking": list(ranking), "context": ctx,
                       "propensity": pp[0], "timestamp": now,
                       "user_id": None if user_ids is None else user_ids[i],
                       "config_version": state.snapshot.config_version}
            if keyed:  # what a replay needs to answer the same decision, and the request's hash
                payload.update(keyed, position_propensities=list(pp))
            event = {"type": "decision", "decision_id": did, "timestamp": now,
                     "bandit": bandit, "context": ctx, "arm": ranking[0],
                     "ranking": list(ranking), "propensity": pp[0],
                     "position_propensities": list(pp),
                     "user_id": payload["user_id"], "model_version": state.snapshot.version}
            if allocation is not None:
                event["arm_probabilities"] = allocation
            items.append(NewDecision(did, payload, deadline, event))
            out.append(EngineDecision(did, bandit, ranking[0], ranking, pp[0], pp,
                                      state.snapshot.version, now, deadline))
        # one round trip for the whole batch, all or nothing
        try:
            self.store.put_pending_many(bandit, items)
        except DecisionExistsError:
            if idempotency_key is None:
                raise
            # the key's decisions are recorded already (a retry, or a concurrent twin that
            # won the insert): answer those
            return self._replay(bandit, idempotency_key, [it.decision_id for it in items],
                                keyed["request"])
        return out

    def _replay(self, bandit: str, key: str, ids: list[str], request: str
                ) -> list[EngineDecision]:
        """The decisions an idempotency key recorded, if they were made for ``request``."""
        out = []
        for did in ids:
            try:
                p = self.store.get_pending(bandit, did)
            except DecisionNotFoundError:
                raise IdempotencyConflictError(
                    f"idempotency key {key!r}: some of its decisions on {bandit!r} are no "
                    "longer kept; use a new key") from None
            pl = p.payload
            if pl.get("request") != request:
                raise IdempotencyConflictError(
                    f"idempotency key {key!r} was used on {bandit!r} for another request "
                    "(context, eligible arms, k, user ids or count differ); use a new key")
            out.append(EngineDecision(
                did, bandit, pl["arm"], tuple(pl["ranking"]), float(pl["propensity"]),
                tuple(float(v) for v in pl["position_propensities"]),
                int(pl["model_version"]), float(pl["timestamp"]), p.deadline, replayed=True))
        return out

    def _first_slot(self, state: _Cached, mask: np.ndarray | None
                    ) -> tuple[np.ndarray, dict[str, float] | None]:
        """Propensity of each arm being chosen first, floored like ``batch_propensities``, and
        the unfloored probabilities as ``{arm: p}`` (arms with ``p > 0``; ``None`` past
        ``_LOGGED_ALLOCATION_ARMS`` arms) for the decision event.

        For a context-free bandit it depends only on the posterior (one model version) and the
        eligible set, so it is estimated once per version and eligible set and reused by every
        decision made from that same posterior -- each decision's propensity is still the
        probability of its choice under the posterior it was drawn from. (Monte Carlo with
        ``propensity_draws`` draws for Thompson sampling; exact for deterministic rules.) The
        event logs every arm's probability, not only the chosen one's, because that is what
        checks the allocation of a bandit of more than two arms (the report's SRM check): a
        Monte-Carlo estimate is unbiased before the floor, so it is logged unfloored.
        Called with the engine lock held.
        """
        key = None if mask is None else mask.tobytes()
        hit = state.first_slot.get(key)
        if hit is None:
            spec = state.spec
            raw = np.asarray(spec.rule.action_probabilities(
                spec.model, state.posterior, state.stats, self._side_rng, None, mask,
                spec.propensity_draws), dtype=float)
            floor = 0.0 if spec.rule.deterministic else 1.0 / spec.propensity_draws
            allocation = None if len(spec.arms) > _LOGGED_ALLOCATION_ARMS else {
                a: float(p) for a, p in zip(spec.arms, raw.tolist(), strict=True) if p > 0}
            hit = (np.maximum(raw, floor), allocation)
            if len(state.first_slot) < _FIRST_SLOT_KEYS:
                state.first_slot[key] = hit
        return hit

    # ----- rewards ------------------------------------------------------------------------
    def _deltas(self, spec: BanditSpec, stats: Stats, arm: str, reward: float,
                context: list[float] | None, config_version: int | None
                ) -> dict[str, np.ndarray] | None:
        if not spec.learns(arm, config_version):
            return None  # the arm was retired after the decision: nothing to learn
        a = np.array([spec.arms.index(arm)])
        r = np.array([reward], dtype=float)
        x = None if context is None else np.asarray([context], dtype=float)
        model = spec.model
        # No overflow check here: the model's bounds (|reward|, |x_i| <= 1e12) keep one
        # observation's delta finite, and the store refuses, inside its atomic write, a sum
        # with the stored totals that would not be (InvalidRewardError; a decision logged
        # before the bounds existed is covered by that too).
        if model.additive:
            return dict(model.delta(len(spec.arms), a, r, x))
        # non-additive (Laplace): the change a refit makes to the current statistics
        after = stats.copy()
        model.accumulate(after, a, r, x)
        return dict(after - stats)

    def record_reward(self, decision_id: str, reward: Any) -> RewardOutcome:
        """Apply a reward to a pending decision, exactly once.

        A repeat returns ``status="duplicate"`` and changes nothing; an unknown id raises
        :class:`DecisionNotFoundError`; a reward after the window raises
        :class:`DecisionExpiredError`; a reward outside the model's domain raises
        :class:`InvalidRewardError` and changes nothing.
        """
        bandit, _ = split_decision_id(decision_id)
        try:
            return self._record_reward(bandit, decision_id, reward)
        except BanditNotFoundError:
            self._cache.pop(bandit, None)
            raise DecisionNotFoundError(f"unknown decision id {decision_id!r}") from None

    def _record_reward(self, bandit: str, decision_id: str, reward: Any) -> RewardOutcome:
        cached = self._cache.get(bandit)
        if cached is not None and cached.spec.model.additive:
            # An additive model's delta needs only the configuration, and the write below is
            # guarded by its version: a cached state saves the read (a changed arm layout
            # raises VersionConflictError, and the reward is recomputed on a fresh read).
            state = cached
        else:
            state = self._state(bandit)
        spec = state.spec
        r = spec.model.check_reward(reward)
        pending = self.store.get_pending(bandit, decision_id)
        payload = pending.payload
        made_at = payload.get("config_version")
        for _attempt in range(3):
            deltas = self._deltas(spec, state.stats, payload["arm"], r, payload.get("context"),
                                  made_at)
            now = self.clock()
            event = {"type": "reward", "decision_id": decision_id, "timestamp": now,
                     "bandit": bandit, "arm": payload["arm"], "reward": r,
                     "context": payload.get("context"), "propensity": payload.get("propensity")}
            if deltas is None:
                event["arm_retired"] = True  # consumed, not learned
            self._maybe_decay(spec)
            try:
                res = self.store.apply_reward(
                    bandit, decision_id, deltas or {}, event, now,
                    config_version=state.snapshot.config_version)
            except VersionConflictError:
                # arms changed between our read and the write: re-read and recompute
                state = self._state(bandit, fresh=True)
                spec = state.spec
                continue
            status: Literal["applied", "duplicate", "arm_retired"] = res.status
            if deltas is None and status == "applied":
                status = "arm_retired"
            return RewardOutcome(decision_id, bandit, payload["arm"], status, res.version)
        raise VersionConflictError(f"bandit {bandit!r} kept changing; retry the reward")

    def sweep_expired(self, bandit: str | None = None, *, limit: int = 1000) -> int:
        """Settle decisions whose window passed, applying the default reward (if any) once.

        Safe with many workers sweeping at the same time. Returns the number settled.
        """
        names = [bandit] if bandit is not None else self.list_bandits()
        total = 0
        for name in names:
            state = self._state(name, fresh=True)
            spec = state.spec

            def deltas_fn(claim: ClaimedDecision, spec: BanditSpec = spec,
                          stats: Stats = state.stats
                          ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
                p = claim.payload
                event = {"type": "expired", "decision_id": claim.decision_id,
                         "timestamp": self.clock(), "bandit": spec.name, "arm": p["arm"],
                         "reward": spec.default_reward, "context": p.get("context"),
                         "propensity": p.get("propensity")}
                if not spec.learns(p["arm"], p.get("config_version")):
                    event["arm_retired"] = True
                    return None, event
                if spec.default_reward is None:
                    return None, event
                return (self._deltas(spec, stats, p["arm"], float(spec.default_reward),
                                     p.get("context"), p.get("config_version")), event)

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
        {'ads': SweepResult(settled=3, purged=0, trimmed=0)}
        >>> now[0] = 12.0
        >>> engine.sweep()
        {'ads': SweepResult(settled=0, purged=3, trimmed=0)}
        """
        names = [bandit] if bandit is not None else self.list_bandits()
        rounds = max(int(max_rounds), 1)
        out: dict[str, SweepResult] = {}
        failures: list[tuple[str, TsbanditError]] = []
        for name in names:
            try:
                settled = 0
                for _ in range(rounds):
                    n = self.sweep_expired(name, limit=limit)
                    settled += n
                    if n < limit:
                        break
                purged = trimmed = 0
                if purge:
                    for _ in range(rounds):
                        res = self.store.purge(name, self.clock(), limit=10 * limit)
                        purged += res.decisions
                        trimmed += res.events
                        if res.decisions < 10 * limit:
                            break
            except BanditNotFoundError:
                if bandit is not None:
                    raise
                self._cache.pop(name, None)
                continue  # deleted while we swept
            except StoreUnavailableError:
                raise
            except TsbanditError as exc:
                # one bandit that cannot be swept (a configuration stored by an older version
                # outside today's bounds, a pending reward that would overflow) must not stop
                # the sweep of the others: go on, then report it
                if bandit is not None:
                    raise
                failures.append((name, exc))
                continue
            out[name] = SweepResult(settled, purged, trimmed)
        if failures:
            first, error = failures[0]
            raise type(error)(
                f"the sweep skipped {len(failures)} bandit(s) "
                f"{[n for n, _ in failures]} (the others were swept); {first!r}: {error}"
            ) from error
        return out

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
            new = BanditSpec.from_config({**spec.to_config(), "arms": arms,
                                          "arm_since": since})
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
        """
        state = self._state(bandit, fresh=True)
        spec, model, post = state.spec, state.spec.model, state.posterior
        x = self._context(spec, context)
        xs = None if x is None else x[0]
        mean = np.asarray(model.mean(post, xs))
        lo, hi = model.interval(post, level, xs)
        with self._lock:
            draws = model.sample(post, self._side_rng, xs, size=n_draws)
        best = np.bincount(np.argmax(draws, axis=-1), minlength=len(spec.arms)) / n_draws
        pulls = model.counts(state.stats)
        sums = model.reward_sums(state.stats)
        arms = []
        for i, a in enumerate(spec.arms):
            row: dict[str, Any] = {"arm": a, "mean": float(mean[i]),
                                   "lower": float(lo[i]), "upper": float(hi[i]),
                                   "pulls": float(pulls[i]), "rewards": float(sums[i]),
                                   "prob_best": float(best[i])}
            if hasattr(post, "alpha") and spec.model.kind == "beta":
                row["alpha"] = float(post.alpha[i])
                row["beta"] = float(post.beta[i])
            arms.append(row)
        return {"bandit": bandit, "model_version": state.snapshot.version, "level": level,
                "arms": arms}

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

    # ----- the service's door (issue 14 item 3): thin delegates, real code elsewhere -------
    @classmethod
    def open(cls, url: str, *, observer: StoreObserver | None = None,
             seed: int | np.random.SeedSequence | None = None,
             clock: Callable[[], float] = time.time, max_staleness_ms: float = 0.0,
             **store_options: Any) -> Engine:
        """An engine over the store at ``url`` (``memory://``, ``sqlite:///path``,
        ``redis://...``; ``store_options`` such as ``retention`` go to the store), with every
        store call reported to ``observer`` when one is given (see
        :mod:`tsbandit.stores.observed`). The other parameters are the constructor's."""
        from .engine_ops import open_store

        return cls(open_store(url, observer=observer, **store_options), seed=seed, clock=clock,
                   max_staleness_ms=max_staleness_ms)

    def observed(self, observer: StoreObserver) -> Engine:
        """This engine with its store calls reported to ``observer``: a twin sharing the
        store, streams and cache (see :func:`tsbandit.engine_ops.observed`)."""
        from .engine_ops import observed

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
        from .experiments.bandit_report import bandit_report

        spec, stats, version = self.statistics(bandit)
        return bandit_report(bandit, spec, stats, version,
                             lambda: self.store.iter_events(bandit), rule=rule, level=level,
                             split=split, srm=srm, srm_threshold=srm_threshold, draws=draws,
                             rng=rng)


def open_store(url: str, *, observer: StoreObserver | None = None, **options: Any) -> Store:
    """The store at ``url``, observed when an ``observer`` is given
    (:func:`tsbandit.engine_ops.open_store`)."""
    from .engine_ops import open_store as open_

    return open_(url, observer=observer, **options)


def bandit_spec(name: str, arms: Sequence[str], *, model: Mapping[str, Any] | None = None,
                rule: Mapping[str, Any] | None = None, max_features: int | None = None,
                **options: Any) -> BanditSpec:
    """A :class:`BanditSpec` from the model's and the rule's configuration dicts
    (:func:`tsbandit.engine_ops.bandit_spec`)."""
    from .engine_ops import bandit_spec as build

    return build(name, arms, model=model, rule=rule, max_features=max_features, **options)


def kernels_status() -> str:
    """What the optional compiled kernels are doing (``"on"``, ``"not loaded"``...)."""
    from .engine_ops import kernels_status as status

    return status()


def load_kernels(on_ready: Callable[[], None] | None = None) -> None:
    """Load the optional compiled kernels in the background (decisions meanwhile on NumPy)."""
    from .engine_ops import load_kernels as load

    load(on_ready)
