"""What the engine offers its callers beyond deciding and learning: opening a store by URL
(observed or not), building a bandit's specification from configuration dicts, the optional
compiled kernels. :class:`~tsbandit.engine.Engine` and :mod:`tsbandit.engine` expose these
through thin methods and functions (``Engine.open``, ``engine.observed``, ``bandit_spec``,
``kernels_status``...), so that the service needs no import of ``stores`` or ``policies``.

>>> from tsbandit.engine import Engine, bandit_spec
>>> engine = Engine.open("memory://", seed=0)
>>> spec = engine.create_bandit(bandit_spec("ads", ["a", "b"], model={"kind": "gaussian"}))
>>> spec.model.kind, engine.decide("ads").arm in spec.arms
('gaussian', True)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError
from ..policies.registry import model_from_config, rule_from_config
from ..stores import open_store as _open_store
from ..stores.base import Store
from ..stores.observed import ObservedStore, StoreObserver
from ..stores.sharded import ShardedStore

if TYPE_CHECKING:
    from .base import EngineBase
    from .spec import BanditSpec

E = TypeVar("E", bound="EngineBase")

__all__ = ["bandit_spec", "kernels_status", "load_kernels", "observed", "open_store"]


def open_store(url: str, *, observer: StoreObserver | None = None, **options: Any) -> Store:
    """The store for ``url`` (see :func:`tsbandit.stores.open_store`; ``memory`` and
    ``memory:`` are accepted as spellings of ``memory://``) under a
    :class:`~tsbandit.stores.sharded.ShardedStore` (bandits created with ``shards`` spread over
    several; the others pass through), wrapped in an
    :class:`~tsbandit.stores.observed.ObservedStore` when an ``observer`` is given.
    ``options`` (``retention``, ``events_maxlen``) go to the store's constructor.

    Raises
    ------
    ConfigurationError
        Unknown scheme or malformed URL.
    """
    if url in ("memory", "memory:"):
        url = "memory://"
    store: Store = ShardedStore(_open_store(url, **options))
    return store if observer is None else ObservedStore(store, observer)


def observed(engine: E, observer: StoreObserver) -> E:
    """A twin of ``engine`` whose store calls are reported to ``observer``: the same store
    (under an :class:`~tsbandit.stores.observed.ObservedStore`), clock, staleness, decision
    streams, cache and lock -- one engine with two doors, so decisions made through either
    continue the same random streams. Calls made through ``engine`` itself are not observed.
    """
    twin = copy.copy(engine)
    twin._cache = engine._cache.sharing(ObservedStore(engine.store, observer))
    return twin


def bandit_spec(name: str, arms: Sequence[str], *, model: Mapping[str, Any] | None = None,
                rule: Mapping[str, Any] | None = None, max_features: int | None = None,
                metrics: Mapping[str, Any] | None = None,
                objective: Mapping[str, float] | None = None,
                constraints: Sequence[Mapping[str, Any]] | None = None,
                costs: Mapping[str, float] | None = None, baseline: str | None = None,
                **options: Any) -> BanditSpec:
    """A :class:`~tsbandit.engine.BanditSpec` from configuration dicts: ``model``
    (``{"kind": "beta", ...}``, default Beta-Bernoulli) and ``rule`` (``{"kind":
    "thompson", ...}``, default Thompson sampling); ``options`` are the spec's other fields
    (``reward_window``, ``default_reward``, ``half_life``, ``propensity_draws``,
    ``metric_windows``, ``metric_defaults``).

    Several metrics instead of ``model``: ``metrics``, ``objective``, ``constraints``,
    ``costs`` (by arm name) and ``baseline`` (an arm), as for :class:`~tsbandit.Bandit`
    (:func:`tsbandit.metric_core.metric_setup` builds both from the same configuration).

    Raises :class:`ConfigurationError` for an invalid model or rule, and for a contextual
    model with more than ``max_features`` features (checked before the rule is built).

    >>> spec = bandit_spec("cards", ["A", "B"], metrics={"apply": "beta", "risk":
    ...     {"model": "beta", "given": "apply"}}, constraints=[{"metric": "risk", "max": 0.1}])
    >>> spec.metrics.names, spec.rule.kind
    (('apply', 'risk'), 'constrained')
    """
    from ..metric_core import metric_setup
    from .spec import BanditSpec

    if metrics is not None or objective or constraints or costs or baseline is not None:
        if model is not None:
            raise ConfigurationError("give either model or metrics, not both")
        ms, built_rule = metric_setup(
            list(arms), None, None if rule is None else rule_from_config(dict(rule)), metrics,
            objective, constraints, costs, baseline)
        if (max_features is not None and ms.n_features is not None
                and ms.n_features > max_features):
            raise ConfigurationError(f"n_features == {ms.n_features}, at most "
                                     f"{max_features} allowed")
        return BanditSpec(name=name, arms=arms, model=ms, rule=built_rule, **options)
    if model is not None:
        built = model_from_config(dict(model))
        if (max_features is not None and built.n_features is not None
                and built.n_features > max_features):
            raise ConfigurationError(f"n_features == {built.n_features}, at most "
                                     f"{max_features} allowed")
        options["model"] = built
    if rule is not None:
        options["rule"] = rule_from_config(dict(rule))
    return BanditSpec(name=name, arms=arms, **options)


def kernels_status() -> str:
    """What the optional compiled kernels (``tsbandit[fast]``) are doing: ``"on"``, ``"not
    loaded"``, ``"numba not available (...)"``..."""
    from ..policies import kernels

    return kernels.status()


def load_kernels(on_ready: Callable[[], None] | None = None) -> None:
    """Load (or compile) the optional compiled kernels in a background thread; decisions run
    on NumPy (the same draws and choices) until they are ready, then take them. ``on_ready``
    runs in that thread once loading is over."""
    from ..policies import kernels

    kernels.load_in_background(on_ready=on_ready)
