"""Warm-start statistics fitted from a logged event file (the service's JSON Lines log).

The decisions and rewards of the log are joined by :func:`~.jsonl.load_event_log` (decision
events carry the context and the arm, reward events the reward), and every joined round is added
to the model's statistics as one observation; the result is discounted and capped as
:func:`tsbandit.policies.warm_start.warm_start` does. Rounds are not importance-weighted: a
reward model's regression is fitted on what was observed, whichever policy chose the arms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from ..errors import WarmStartError
from ..policies.base import RewardModel
from ..policies.stats import Stats
from ..policies.warm_start import warm_start
from .jsonl import load_event_log

__all__ = ["stats_from_event_log"]


def stats_from_event_log(model: RewardModel, source: str | Path | IO[str] | Iterable[str], *,
                         arms: Sequence[str], bandit: str | None = None, weight: float = 1.0,
                         max_count: float | None = None,
                         missing_reward: str | float = "drop") -> Stats:
    """The statistics of ``model`` after learning every joined round of an event log.

    Parameters
    ----------
    model
        The new bandit's reward model (contexts and rewards are checked against it).
    source
        Path, open text file or iterable of JSON lines (:mod:`tsbandit.events`).
    arms
        The new bandit's arms, in order; logged arms not among them are an error.
    bandit
        The bandit whose events to read (required when the log holds several).
    weight, max_count
        Each logged observation counts ``weight`` times; each arm keeps at most
        ``max_count`` effective observations.
    missing_reward
        ``"drop"`` decisions without a reward, or the reward to give them.

    Raises
    ------
    InvalidLogError
        A malformed log (see :func:`~.jsonl.load_event_log`).
    InvalidContextError, InvalidRewardError
        A logged context or reward the model cannot learn from.
    WarmStartError
        A bad weight or cap.

    Examples
    --------
    >>> import json
    >>> from tsbandit.policies import BetaBernoulli
    >>> lines = [json.dumps({"type": "decision", "decision_id": "d1", "timestamp": 1.0,
    ...                      "arm": "b", "propensity": 0.5, "context": None}),
    ...          json.dumps({"type": "reward", "decision_id": "d1", "timestamp": 2.0,
    ...                      "reward": 1})]
    >>> stats_from_event_log(BetaBernoulli(), lines, arms=["a", "b"])["successes"].tolist()
    [0.0, 1.0]
    """
    if not arms:
        raise WarmStartError("arms must name the new bandit's arms")
    data = load_event_log(source, bandit=bandit, arms=list(arms), missing_reward=missing_reward)
    contexts = model.check_contexts(data.contexts, data.n_rounds)
    rewards = model.check_rewards(data.rewards)
    stats = model.init_stats(len(arms))
    model.accumulate(stats, data.actions, rewards, contexts)
    return warm_start(model, stats, weight=weight, max_count=max_count)
