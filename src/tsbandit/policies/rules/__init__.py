"""Selection rules: turn a reward model's posterior into a choice or a ranking."""

from __future__ import annotations

from .allocation import TopTwoThompson, TrafficFloor
from .base import (
    LaneScorer,
    SelectionRule,
    batch_propensities,
    lanes_argmax,
    mask_scores,
    position_probabilities,
    top_k,
)
from .greedy import EpsilonGreedy, Greedy
from .softmax import RandomPolicy, Softmax
from .thompson import ThompsonSampling
from .ucb import UCB1, LinUCB

__all__ = [
    "UCB1",
    "EpsilonGreedy",
    "Greedy",
    "LaneScorer",
    "LinUCB",
    "RandomPolicy",
    "SelectionRule",
    "Softmax",
    "ThompsonSampling",
    "TopTwoThompson",
    "TrafficFloor",
    "batch_propensities",
    "lanes_argmax",
    "mask_scores",
    "position_probabilities",
    "top_k",
]
