"""LoggedData validation: every bad log is refused with a message that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import InvalidContextError, InvalidRewardError, TsbanditError, UnknownArmError
from tsbandit.evaluation import InvalidLogError, LoggedData


def make(**kw):
    base = dict(actions=np.array([0, 1, 1]), rewards=np.array([1.0, 0.0, 1.0]),
                propensities=np.array([0.5, 0.5, 0.25]), n_actions=2)
    base.update(kw)
    return LoggedData(**base)


def test_valid_log_and_defaults():
    log = make()
    assert log.n_rounds == 3
    assert log.action_names == ("0", "1")
    assert log.position_index.tolist() == [0, 0, 0]
    assert log.describe()["reward_sum"] == 2.0


@pytest.mark.parametrize(
    ("kw", "exc", "words"),
    [
        ({"propensities": np.array([0.5, 0.0, 0.5])}, InvalidLogError, "(0, 1]"),
        ({"propensities": np.array([0.5, 1.5, 0.5])}, InvalidLogError, "(0, 1]"),
        ({"propensities": np.array([0.5, np.nan, 0.5])}, InvalidLogError, "round 1"),
        ({"propensities": np.array([0.5, 0.5])}, InvalidLogError, "expected 3"),
        ({"rewards": np.array([1.0, np.nan, 0.0])}, InvalidRewardError, "finite"),
        ({"actions": np.array([0, 2, 1])}, InvalidLogError, "outside 0..1"),
        ({"actions": np.array([0, 0.5, 1])}, InvalidLogError, "integer"),
        ({"contexts": np.ones((2, 4))}, InvalidContextError, "expected (3, d)"),
        ({"contexts": np.array([[1.0], [np.inf], [0.0]])}, InvalidContextError, "round 1"),
        ({"positions": np.array([0, 3, 1]), "n_positions": 3}, InvalidLogError, "positions"),
        ({"n_positions": 3}, InvalidLogError, "needs positions"),
        ({"action_names": ("a", "a")}, InvalidLogError, "distinct"),
        ({"action_names": ("a",)}, InvalidLogError, "1 action names"),
        ({"n_actions": 0}, InvalidLogError, "n_actions"),
        ({"timestamps": np.array([0.0, np.nan, 1.0])}, InvalidLogError, "timestamps"),
    ],
)
def test_invalid_logs(kw, exc, words):
    with pytest.raises(exc) as info:
        make(**kw)
    assert words in str(info.value)
    assert isinstance(info.value, TsbanditError) and isinstance(info.value, ValueError)


def test_subset_and_action_index():
    log = make(contexts=np.arange(6.0).reshape(3, 2), action_names=("a", "b"))
    sub = log.subset(np.array([True, False, True]))
    assert sub.n_rounds == 2 and sub.contexts[1].tolist() == [4.0, 5.0]
    assert log.action_index(["b", "a"]).tolist() == [1, 0]
    with pytest.raises(UnknownArmError, match="'z'"):
        log.action_index(["z"])
