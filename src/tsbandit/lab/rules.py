"""Tempered Thompson sampling, kept here under its old lab names for existing imports.

The rule now lives in the core as ``ThompsonSampling(scale=...)``
(:mod:`tsbandit.policies.rules.thompson`), so :class:`~tsbandit.Bandit`, the engine and the
service can deploy the lab's default contextual sampler. The lab builds its policies with the
core rule; :class:`TemperedThompsonSampling` is that rule with the lab's old default scale
(0.25), and its configuration is the core one (``{"kind": "thompson", "scale": ...}``), which
:func:`tsbandit.policies.registry.rule_from_config` loads as ``ThompsonSampling``.

>>> import numpy as np
>>> from tsbandit.policies import LogisticLaplace
>>> m = LogisticLaplace(n_features=2); s = m.init_stats(3)
>>> TemperedThompsonSampling(0.25).choose(m, m.posterior(s), s, np.random.default_rng(0),
...                                       np.array([1.0, 0.5])).shape
(1,)
>>> TemperedThompsonSampling(0.25).to_config()
{'kind': 'thompson', 'scale': 0.25}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..policies.rules import ThompsonSampling

__all__ = ["TemperedThompsonSampling"]


@dataclass(frozen=True)
class TemperedThompsonSampling(ThompsonSampling):
    """``ThompsonSampling(scale=...)`` with the lab's old default scale.

    Parameters
    ----------
    scale
        Posterior standard-deviation multiplier, > 0 (1 = plain Thompson sampling).
    """

    scale: float = 0.25
