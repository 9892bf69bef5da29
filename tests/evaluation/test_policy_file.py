"""A target policy from a file of per-round action probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError
from tsbandit.evaluation import IPS, LoggedData
from tsbandit.evaluation.policy_file import FilePolicy

from .test_estimators import random_log


@pytest.fixture
def case():
    log, _ = random_log(7, 50, 3)
    pi_e = np.random.default_rng(8).dirichlet(np.ones(3), size=50)
    return log, pi_e


def test_npy_npz_and_jsonl_give_the_same_estimate(tmp_path, case):
    log, pi_e = case
    expected = IPS().estimate(log, pi_e).value
    np.save(tmp_path / "pi.npy", pi_e)
    np.savez(tmp_path / "one.npz", anything=pi_e)
    np.savez(tmp_path / "named.npz", action_dist=pi_e, other=np.zeros(3))
    (tmp_path / "pi.jsonl").write_text("\n".join(json.dumps(r) for r in pi_e.tolist()) + "\n")
    for name in ("pi.npy", "one.npz", "named.npz", "pi.jsonl"):
        pi = FilePolicy(tmp_path / name).action_dist(log)
        assert IPS().estimate(log, pi).value == pytest.approx(expected, rel=1e-15), name


def test_slate_probabilities(tmp_path):
    log = LoggedData(np.array([0, 1, 1, 0]), np.array([1.0, 0.0, 1.0, 0.0]), np.full(4, 0.5), 2,
                     positions=np.array([0, 1, 0, 1]), n_positions=2)
    pi = np.zeros((4, 2, 2))
    pi[:, 0, 0] = pi[:, 1, 1] = 1.0
    np.save(tmp_path / "slate.npy", pi)
    assert FilePolicy(tmp_path / "slate.npy").action_dist(log).shape == (4, 2, 2)
    assert IPS().estimate(log, FilePolicy(tmp_path / "slate.npy").action_dist(log)).value == 0.5


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda pi: pi[:40], r"shape \(40, 3\), expected \(50, 3\): 40 rows for a log of 50"),
        (lambda pi: pi[:, :2], "2 actions for a log of 3 actions"),
        (lambda pi: np.where(np.arange(50)[:, None] == 4, pi * 1.5, pi), r"round 4's .* sum to"),
        (lambda pi: np.where(np.arange(50)[:, None] == 9, [[1.2, -0.2, 0.0]], pi),
         "round 9 has a negative"),
        (lambda pi: np.where(np.arange(50)[:, None] == 2, np.nan, pi), "round 2 has a negative or"
         " non-finite"),
    ],
)
def test_bad_arrays(tmp_path, case, make, words):
    log, pi_e = case
    np.save(tmp_path / "bad.npy", make(pi_e))
    with pytest.raises(ConfigurationError, match=words):
        FilePolicy(tmp_path / "bad.npy").action_dist(log)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigurationError, match="no target-policy file"):
        FilePolicy(tmp_path / "nope.npy")
    (tmp_path / "pi.txt").write_text("0.5 0.5")
    with pytest.raises(ConfigurationError, match=r"use \.npy, \.npz or \.jsonl"):
        FilePolicy(tmp_path / "pi.txt")
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(ConfigurationError, match=r"holds arrays \['a', 'b'\]"):
        FilePolicy(tmp_path / "two.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigurationError, match="cannot read"):  # never unpickled
        FilePolicy(tmp_path / "obj.npy")
    (tmp_path / "bad.jsonl").write_text("[0.5, 0.5]\n{oops\n")
    with pytest.raises(ConfigurationError, match="line 2: not JSON"):
        FilePolicy(tmp_path / "bad.jsonl")
    (tmp_path / "ragged.jsonl").write_text("[0.5, 0.5]\n[1.0]\n")
    with pytest.raises(ConfigurationError, match="cannot read"):
        FilePolicy(tmp_path / "ragged.jsonl")
    (tmp_path / "words.jsonl").write_text('["a", "b"]\n')
    with pytest.raises(ConfigurationError, match="cannot read"):
        FilePolicy(tmp_path / "words.jsonl")
