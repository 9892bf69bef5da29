"""The carousel world and its learners: click laws, pairing, determinism, learning."""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.lab.carousel import CAROUSELS, CarouselWorld, run_carousel


def test_pbm_world_clicks_follow_attractiveness_times_examination():
    world = CarouselWorld((0.5, 0.2, 0.1, 0.05), (1.0, 0.6, 0.3))
    rng = np.random.default_rng(0)
    n = 40_000
    rk = np.tile([1, 0, 2], (n, 1))
    clicks = world.clicks(rk, rng.random((n, 4)), rng.random((n, 3)))
    p = np.array([0.2 * 1.0, 0.5 * 0.6, 0.1 * 0.3])
    se = np.sqrt(p * (1 - p) / n)
    assert (np.abs(clicks.mean(axis=0) - p) < 4 * se).all()
    np.testing.assert_allclose(world.expected_clicks(rk[:1]), [p.sum()])


def test_cascade_world_clicks_the_first_attractive_arm_only():
    world = CarouselWorld((0.5, 0.2, 0.1, 0.05), click_model="cascade")
    rng = np.random.default_rng(1)
    n = 40_000
    rk = np.tile([0, 1, 2], (n, 1))
    clicks = world.clicks(rk, rng.random((n, 4)), rng.random((n, 3)))
    assert clicks.sum(axis=1).max() == 1
    p = np.array([0.5, 0.5 * 0.2, 0.5 * 0.8 * 0.1])
    se = np.sqrt(p * (1 - p) / n)
    assert (np.abs(clicks.mean(axis=0) - p) < 4 * se).all()
    assert world.expected_clicks(rk[:1])[0] == pytest.approx(p.sum())


def test_same_seed_same_result_and_learners_are_paired():
    a = run_carousel("carousel", ["top-slot-ts", "pbm-ts", "oracle"], trials=3, rounds=100,
                     seed=7)
    b = run_carousel("carousel", ["oracle", "pbm-ts"], trials=3, rounds=100, seed=7)
    assert a.clicks["pbm-ts"] != a.clicks["top-slot-ts"]
    # the users' draws do not depend on which learners run: the oracle meets the same users
    np.testing.assert_array_equal(a.per_trial["oracle"], b.per_trial["oracle"])
    c = run_carousel("carousel", ["top-slot-ts", "pbm-ts", "oracle"], trials=3, rounds=100,
                     seed=7)
    assert c.clicks == a.clicks


@pytest.mark.parametrize("scenario", sorted(CAROUSELS))
def test_slot_learners_beat_the_top_slot_learner_and_stay_below_the_oracle(scenario):
    res = run_carousel(scenario, trials=6, rounds=600, seed=3)
    best = res.world["best_expected_clicks"]
    assert res.expected["oracle"] == pytest.approx(best)
    for name in ("top-slot-ts", "pbm-ts", "cascade-ts"):
        assert res.expected["random"] < res.expected[name] < best
    # expected clicks (no click noise), paired users: every-slot learning is ahead already
    assert res.expected["pbm-ts"] > res.expected["top-slot-ts"]
    assert res.expected["cascade-ts"] > res.expected["top-slot-ts"]


def test_bad_names_and_sizes_raise():
    with pytest.raises(ConfigurationError, match="unknown carousel 'nope'"):
        run_carousel("nope")
    with pytest.raises(ConfigurationError, match="unknown carousel learner 'x'"):
        run_carousel("carousel", ["x"], trials=1, rounds=1)
    with pytest.raises(ConfigurationError, match="rounds == 0"):
        run_carousel("carousel", rounds=0)
    with pytest.raises(ConfigurationError, match="click_model"):
        CarouselWorld(click_model="dbn")


def test_simulate_runs_a_carousel_from_the_command_line():
    from typer.testing import CliRunner

    from tsbandit.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["simulate", "carousel", "--policies", "top-slot-ts,pbm-ts",
                             "--trials", "2", "--rounds", "50"])
    assert ok.exit_code == 0, ok.output
    assert "pbm-ts" in ok.output and "x top-slot-ts" in ok.output
    bad = runner.invoke(app, ["simulate", "carousel-nope", "--trials", "1", "--rounds", "1"])
    assert bad.exit_code == 2 and "unknown carousel" in bad.output
