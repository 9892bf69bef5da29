"""Generic CSV and Parquet logs with named columns."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tsbandit.errors import ConfigurationError, InvalidContextError, InvalidRewardError
from tsbandit.evaluation import InvalidLogError
from tsbandit.evaluation.tabular import load_table, table_columns

HEADER = "ts,arm,clicked,p,x_age,x_income,slot,note"
ROWS = [
    "1,red,1,0.5,0.3,10,1,a",
    "2,blue,0,0.25,-1.2,20,2,b",
    "3,green,0,0.25,0.0,30,1,c",
    "4,red,1,0.5,2.0,40,2,d",
]


def write(tmp_path, lines, name="log.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path, **kw):
    args = {"action_col": "arm", "reward_col": "clicked", "propensity_col": "p"}
    return load_table(path, **{**args, **kw})


def test_named_columns_in_file_order(tmp_path):
    log = load(write(tmp_path, [HEADER, *ROWS]), context_cols="x_*", position_col="slot")
    assert log.action_names == ("blue", "green", "red")
    assert log.actions.tolist() == [2, 0, 1, 2]
    assert log.rewards.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert log.propensities.tolist() == [0.5, 0.25, 0.25, 0.5]
    assert log.contexts.tolist() == [[0.3, 10], [-1.2, 20], [0.0, 30], [2.0, 40]]
    assert log.positions.tolist() == [0, 1, 0, 1] and log.n_positions == 2
    same = load(write(tmp_path, [HEADER, *ROWS]), context_cols="x_age, x_income")
    assert np.array_equal(same.contexts, log.contexts) and same.positions is None
    ordered = load(write(tmp_path, [HEADER, *ROWS]), arms=["red", "green", "blue", "pink"])
    assert ordered.n_actions == 4 and ordered.actions.tolist() == [0, 2, 1, 0]


def test_integer_actions_and_default_names(tmp_path):
    path = write(tmp_path, ["action,reward,propensity", "0,1.5,0.2", "3,0.5,0.2", "1,2,1"])
    log = load_table(path)
    assert log.n_actions == 4 and log.actions.tolist() == [0, 3, 1]
    assert log.action_names == ("0", "1", "2", "3")
    assert table_columns(path) == ["action", "reward", "propensity"]


@pytest.mark.parametrize(
    ("lines", "kw", "error", "words"),
    [
        ([HEADER, *ROWS], {"action_col": "item"}, InvalidLogError,
         r"no action column 'item' .*--action-col"),
        ([HEADER, *ROWS], {"propensity_col": "pscore"}, InvalidLogError, "--propensity-col"),
        ([HEADER, *ROWS], {"context_cols": "z_*"}, InvalidLogError, "starts with 'z_'"),
        ([HEADER, *ROWS], {"context_cols": "x_age,height"}, InvalidLogError, "height"),
        ([HEADER, *ROWS], {"context_cols": "note"}, InvalidLogError,
         r"column 'note', row 1: 'a' is not a number"),
        ([HEADER, "1,red,yes,0.5,0,0,1,a"], {}, InvalidLogError, "'yes' is not a number"),
        ([HEADER, "1,red,1,0,0,0,1,a"], {}, InvalidLogError, r"propensities must be in \(0, 1\]"),
        ([HEADER, "1,red,1,0.5"], {}, InvalidLogError, "line 2 has 4 fields"),
        ([HEADER], {}, InvalidLogError, "no rows"),
        ([HEADER, *ROWS], {"arms": ["red"]}, InvalidLogError, "not in arms"),
        ([HEADER, "1,red,nan,0.5,0,0,1,a"], {}, InvalidRewardError, "finite"),
        ([HEADER, "1,red,1,0.5,inf,0,1,a"], {"context_cols": "x_*"}, InvalidContextError,
         "NaN or infinite"),
    ],
)
def test_errors_name_the_problem(tmp_path, lines, kw, error, words):
    with pytest.raises(error, match=words):
        load(write(tmp_path, lines), **kw)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InvalidLogError, match="no log file"):
        load_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidLogError, match="empty"):
        load_table(tmp_path / "empty.csv")


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "log.parquet").write_bytes(b"PAR1")
    with pytest.raises(ConfigurationError, match="Parquet needs pyarrow: pip install pyarrow"):
        load_table(tmp_path / "log.parquet")


def test_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (optional: [parquet])")
    import pyarrow.parquet as pq

    csv_log = load(write(tmp_path, [HEADER, *ROWS]), context_cols="x_*", position_col="slot")
    cols = list(zip(*(r.split(",") for r in ROWS), strict=True))
    table = pa.table({
        "arm": list(cols[1]), "clicked": [int(v) for v in cols[2]],
        "p": [float(v) for v in cols[3]], "x_age": [float(v) for v in cols[4]],
        "x_income": [float(v) for v in cols[5]], "slot": [int(v) for v in cols[6]],
    })
    pq.write_table(table, tmp_path / "log.parquet")
    pq_log = load(tmp_path / "log.parquet", context_cols="x_*", position_col="slot")
    for field in ("actions", "rewards", "propensities", "contexts", "positions"):
        assert np.array_equal(getattr(pq_log, field), getattr(csv_log, field)), field
    assert pq_log.action_names == csv_log.action_names
