"""Best-arm identification: top-two Thompson sampling against Thompson sampling and uniform."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.experiments.identification import simulate_identification


@pytest.fixture(scope="module")
def close_arms():
    # the runner-up is close (0.45 vs 0.5): Thompson sampling starves it, top-two does not
    return simulate_identification([0.5, 0.45, 0.3], rng=np.random.default_rng(7),
                                   rounds=800, reps=120, check_every=100, draws=400)


def test_top_two_gives_the_leader_about_beta_and_thompson_much_more(close_arms):
    rows = {r["rule"]: r for r in close_arms.summary()}
    # top-two: the best arm gets beta (0.5) of the traffic once it leads, a bit less before;
    # Thompson sampling gives it most of the traffic; uniform a third
    assert 0.35 <= rows["top_two"]["best_share"] <= 0.55
    assert rows["thompson"]["best_share"] >= rows["top_two"]["best_share"] + 0.1
    assert abs(rows["uniform"]["best_share"] - 1 / 3) < 0.03


def test_top_two_stops_at_least_as_often_and_names_the_best(close_arms):
    rows = {r["rule"]: r for r in close_arms.summary()}
    n = close_arms.reps
    s_tt, s_ts = rows["top_two"]["stopped"], rows["thompson"]["stopped"]
    se = np.sqrt((s_tt * (1 - s_tt) + s_ts * (1 - s_ts)) / n)
    assert s_tt >= s_ts - 4 * se
    # P(best) >= 0.95 at the stop: errors are rare for every rule (4 SE above 5 %)
    for r in rows.values():
        assert r["error_rate"] <= 0.05 + 4 * np.sqrt(0.05 * 0.95 / n)


def test_outcomes_are_consistent(close_arms):
    for o in close_arms.outcomes.values():
        assert ((o.stop == -1) | ((o.stop > 0) & (o.stop <= 800))).all()
        assert ((o.named >= 0) & (o.named < 3)).all()
        assert ((o.best_share >= 0) & (o.best_share <= 1)).all()


def test_bad_settings():
    rng = np.random.default_rng(0)
    for kw in ({"rates": [0.5]}, {"rates": [0.5, 1.5]}, {"rates": [0.1, 0.2], "rounds": 0},
               {"rates": [0.1, 0.2], "prob_best": 0.4}):
        rates = kw.pop("rates")
        with pytest.raises(ConfigurationError):
            simulate_identification(rates, rng=rng, **kw)
