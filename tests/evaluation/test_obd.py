"""The Open Bandit Dataset sample: loading, the production BTS policy, and the cross-log check.

Skipped, with the reason, when ../shared/data/obd is not beside the repository (see conftest).
"""

from __future__ import annotations

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import IPS, InvalidLogError
from tsbandit.evaluation.obd import find_obd_dir, load_obd, load_obd_csv, load_obd_prior
from tsbandit.evaluation.obd_study import run_study, to_markdown
from tsbandit.evaluation.targets import UniformPolicy, thompson_policy


def test_find_obd_dir_from_the_environment(tmp_path, monkeypatch):
    fake = tmp_path / "shared" / "data" / "obd"
    (fake / "random").mkdir(parents=True)
    (fake / "bts").mkdir()
    monkeypatch.setenv("TSBANDIT_SHARED_DATA", str(tmp_path / "shared" / "data"))
    elsewhere = tmp_path / "a" / "repo"
    assert find_obd_dir(elsewhere) == fake
    monkeypatch.setenv("TSBANDIT_SHARED_DATA", str(tmp_path / "shared"))
    assert find_obd_dir(elsewhere) == fake
    monkeypatch.delenv("TSBANDIT_SHARED_DATA")
    assert find_obd_dir(elsewhere) is None
    assert find_obd_dir(tmp_path / "repo") == fake  # ../shared/data/obd beside the root


def test_find_obd_dir_from_the_working_directory(tmp_path, monkeypatch):
    """Without a start (an installed wheel: no repository around the module), the working
    directory and its parents are searched."""
    fake = tmp_path / "shared" / "data" / "obd"
    (fake / "random").mkdir(parents=True)
    (fake / "bts").mkdir()
    monkeypatch.delenv("TSBANDIT_SHARED_DATA", raising=False)
    deep = tmp_path / "work" / "project" / "runs"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_obd_dir() == fake


def test_load_errors(tmp_path):
    with pytest.raises(InvalidLogError, match="no Open Bandit Dataset log"):
        load_obd(tmp_path, "random", "all")
    with pytest.raises(ConfigurationError, match="behavior"):
        load_obd(tmp_path, "epsilon", "all")
    bad = tmp_path / "x.csv"
    bad.write_text(",timestamp,item_id\n0,2019-11-24 00:00:00+00:00,1\n")
    with pytest.raises(InvalidLogError, match="lacks columns"):
        load_obd_csv(bad)


def test_load_random_and_bts(obd_dir):
    rnd = load_obd(obd_dir, "random", "all")
    bts = load_obd(obd_dir, "bts", "all", context="user")
    for log in (rnd, bts):
        assert log.n_rounds == 10_000 and log.n_actions == 80 and log.n_positions == 3
        assert set(np.unique(log.positions)) == {0, 1, 2}
        assert (np.diff(log.timestamps) >= 0).all()
        assert log.action_context.shape[0] == 80
    assert np.allclose(rnd.propensities, 1 / 80)
    assert rnd.rewards.sum() == 38 and bts.rewards.sum() == 42
    assert bts.propensities.min() < 1e-4 and bts.propensities.max() > 0.9
    assert bts.contexts.shape == (10_000, 26)  # one-hot of the 4 hashed user features
    # the uniform policy on the uniform log: every weight is exactly 1
    e = IPS().estimate(rnd, UniformPolicy().action_dist(rnd))
    assert e.value == pytest.approx(rnd.rewards.mean()) and e.ess == pytest.approx(10_000)


def test_prior_parser_matches_yaml(obd_dir):
    yaml = pytest.importorskip("yaml")
    with open(obd_dir / "bts_prior" / "prior_bts.yaml", encoding="utf-8") as fp:
        ref = yaml.safe_load(fp)
    for campaign in ("all", "men", "women"):
        alpha, beta = load_obd_prior(obd_dir, campaign)
        assert alpha.tolist() == ref[campaign]["alpha"]
        assert beta.tolist() == ref[campaign]["beta"]


def test_production_bts_distribution(obd_dir):
    log = load_obd(obd_dir, "random", "men")
    alpha, beta = load_obd_prior(obd_dir, "men")
    pi = thompson_policy(alpha, beta, learn=False, n_sim=20_000).action_dist(
        log, np.random.default_rng(0))
    assert pi.shape == (10_000, 34, 3)
    assert np.allclose(pi.sum(axis=1), 1.0)
    assert (pi[0].sum(axis=1) <= 1.0 + 1e-12).all()
    # the arm with the highest prior mean is the likeliest in slot 1, and in the slate
    top = int(np.argmax(alpha / (alpha + beta)))
    assert pi[0, top, 0] == pi[0, :, 0].max()
    assert pi[0, top].sum() == pi[0].sum(axis=1).max()


@pytest.fixture(scope="module")
def study(obd_dir):
    return run_study(obd_dir, campaigns=["all"], seed=0, n_sim=20_000)


def test_each_log_predicts_the_other(study):
    rows = {(r["direction"], r["estimator"]): r for r in study}
    for direction in ("random -> bts", "bts -> random"):
        for name in ("ips", "snips", "dr", "dm"):
            r = rows[direction, name]
            # agreement within 4 standard errors of the difference (both sides are noisy)
            assert abs(r["z"]) < 4, (direction, name, r["z"])
            assert r["low"] < r["value"] < r["high"]
    # the uniform log spreads its weight; the bts log's tiny propensities concentrate it
    assert rows["random -> bts", "ips"]["ess"] > 1_000
    assert rows["bts -> random", "ips"]["ess"] < 500
    assert rows["bts -> random", "ips"]["max_weight"] > 100
    check = rows["propensity check", "log-correlation"]
    assert check["value"] > 0.2  # the rebuilt BTS resembles the logged one, loosely
    text = to_markdown(study)
    assert "random -> bts" in text and "| ips |" in text
