"""Per-app state: settings, this worker's engine (opened lazily) and the tutorial's join."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from ..engine import BanditSpec, Engine, StoreObserver, open_store
from ..errors import BanditExistsError
from .coalesce import DecisionCoalescer
from .reward_coalesce import RewardCoalescer
from .settings import TUTORIAL_ARMS, Settings

__all__ = ["CustomerJoin", "JoinEntry", "Runtime", "open_store"]

log = logging.getLogger("tsbandit.service")


class JoinEntry(NamedTuple):
    """The latest decision recommended to one customer."""

    decision_id: str
    arm: str


class CustomerJoin:
    """customer id -> latest decision, for the tutorial's ``/reward`` by customer and arm.

    Bounded (least recently used entries go first) and thread-safe. It lives in this worker;
    see ``docs/service.md`` for what that means with several workers.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        #: (bandit, customer) -> (decision id, arm): plain tuples of strings, which the garbage
        #: collector stops tracking (a NamedTuple it never does; see engine/payloads.py)
        self._items: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, bandit: str, customer: str, entry: JoinEntry) -> None:
        """Make ``entry`` the customer's latest decision."""
        key = (bandit, customer)
        with self._lock:
            self._items[key] = (entry.decision_id, entry.arm)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def lookup(self, bandit: str, customer: str) -> JoinEntry | None:
        """The customer's latest decision, or None."""
        with self._lock:
            hit = self._items.get((bandit, customer))
        return None if hit is None else JoinEntry(*hit)

    def forget(self, bandit: str) -> None:
        """Drop every entry of a bandit (it was deleted)."""
        with self._lock:
            for key in [k for k in self._items if k[0] == bandit]:
                del self._items[key]


class Runtime:
    """What the app holds: settings, this worker's :class:`Engine`, the tutorial join, the
    decision and reward coalescers.

    The engine (and with it the store) is opened on first use, so building an app does no I/O;
    the app's lifespan opens it eagerly and closes it at shutdown. With an ``observer`` (the
    service's metrics) the engine is built over an observed store (``Engine.open(...,
    observer=...)``); an engine given here is used through its observed twin
    (``engine.observed(observer)``: calls made through the given object itself are not
    observed).
    """

    def __init__(self, settings: Settings, engine: Engine | None = None, *,
                 observer: StoreObserver | None = None) -> None:
        self.settings = settings
        self.observer = observer
        self._owns_store = engine is None
        self._engine = (engine if engine is None or observer is None
                        else engine.observed(observer))
        self._lock = threading.Lock()
        self.join = CustomerJoin(settings.tutorial_join_capacity)
        #: single decisions, coalesced under concurrency (see service/coalesce.py)
        self.decisions = DecisionCoalescer(offload=settings.offload,
                                           max_batch=settings.max_batch,
                                           enabled=settings.coalesce)
        #: single rewards, coalesced likewise (see service/reward_coalesce.py)
        self.rewards = RewardCoalescer(offload=settings.offload, max_batch=settings.max_batch,
                                       enabled=settings.coalesce)

    @property
    def engine(self) -> Engine:
        """This worker's engine."""
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    s = self.settings
                    options: dict[str, Any] = {
                        k: v for k, v in (("retention", s.retention),
                                          ("events_maxlen", s.events_maxlen)) if v is not None}
                    self._engine = Engine.open(s.store, observer=self.observer, seed=s.seed,
                                               max_staleness_ms=s.max_staleness_ms, **options)
                engine = self._engine
        return engine

    def default_spec(self) -> BanditSpec:
        """The tutorial's bandit: five credit-card offers, Beta(1, 1), Thompson sampling."""
        return BanditSpec(name=self.settings.default_bandit_name, arms=TUTORIAL_ARMS)

    def ensure_default_bandit(self) -> bool:
        """Create the default bandit unless it exists; True when this call created it."""
        try:
            self.engine.create_bandit(self.default_spec())
        except BanditExistsError:
            return False
        log.info("created the default bandit %r", self.settings.default_bandit_name)
        return True

    def close(self) -> None:
        """Close the store if this runtime opened it."""
        with self._lock:
            if self._engine is not None and self._owns_store:
                self._engine.close()
                self._engine = None
