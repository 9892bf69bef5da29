"""``Bandit(..., metrics=..., window=W)``: the statistics of several metrics are those of the
last ``W`` updates (each update's metrics leave the window together), exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsbandit import Bandit

METRICS = {"apply": "beta", "revenue": {"model": "gaussian", "given": "apply"}}
UPDATES = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(
    [{"apply": 0}, {"apply": 1}, {"apply": 1, "revenue": 10.0}, {"revenue": 4.0}])),
    max_size=30)


def replayed(updates, **kw):
    b = Bandit(["A", "B"], metrics=METRICS, seed=0, **kw)
    for arm, rewards in updates:
        b.update(arm, rewards)
    return b


@settings(max_examples=40)
@given(UPDATES, st.integers(1, 8))
def test_window_keeps_exactly_the_last_updates(updates, window):
    windowed = replayed(updates, window=window)
    fresh = replayed(updates[-window:])
    got = windowed._memory.stats
    want = fresh._memory.stats
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-9)
    got_mean, want_mean = windowed.posterior_mean(), fresh.posterior_mean()
    assert all(abs(got_mean[a] - want_mean[a]) < 1e-6 for a in "AB")


def test_window_round_trips_through_json_and_keeps_sliding():
    updates = [("A", {"apply": 1, "revenue": 10.0}), ("B", {"apply": 0}),
               ("A", {"revenue": 3.0}), ("B", {"apply": 1})]
    b = replayed(updates, window=3)
    again = Bandit.from_dict(b.to_dict())
    for arm, rewards in [("A", {"apply": 0}), ("B", {"apply": 1, "revenue": 2.0})]:
        b.update(arm, rewards)
        again.update(arm, rewards)
    for key, value in b._memory.stats.items():
        np.testing.assert_allclose(again._memory.stats[key], value)
    want = replayed([*updates, ("A", {"apply": 0}), ("B", {"apply": 1, "revenue": 2.0})][-3:])
    for key, value in want._memory.stats.items():
        np.testing.assert_allclose(b._memory.stats[key], value, atol=1e-9)
