"""Load a generic table of logged decisions (CSV or Parquet) with named columns.

One row per round, in time order (the file's order is kept: row ``i`` of the file is round ``i``
of the log, which is also the row order a target-policy file must follow). Columns:

``action`` (``action_col``)
    The logged action: integer ids ``0..K-1`` (then ``K`` is the largest id + 1, or the length
    of ``arms``), or names (then the actions are the sorted names seen, or ``arms`` in order).
``reward`` (``reward_col``)
    A number.
``propensity`` (``propensity_col``)
    The logging policy's probability of the logged action, in (0, 1].
context columns (``context_cols``, optional)
    Numbers: a list of names, a comma-separated string ``"age,income"``, or a prefix ending in
    ``*`` (``"x_*"``: every column whose name starts with ``x_``, in file order).
``position`` (``position_col``, optional)
    The slot of a slate; its distinct values, sorted, become slots ``0..L-1``.

CSV is read with the standard library's :mod:`csv`; Parquet needs ``pyarrow`` (an optional
extra: ``pip install 'tsbandit[parquet]'``), imported only when a Parquet file is read.

Examples
--------
>>> import io, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
>>> with open(path, "w") as fp:
...     _ = fp.write("arm,clicked,p,x1\\nred,1,0.5,0.3\\nblue,0,0.5,-1.2\\n")
>>> log = load_table(path, action_col="arm", reward_col="clicked", propensity_col="p",
...                  context_cols="x*")
>>> log.action_names, log.actions.tolist(), log.contexts.shape
(('blue', 'red'), [1, 0], (2, 1))
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .data import InvalidLogError, LoggedData

__all__ = ["load_table", "read_columns", "table_columns"]

PARQUET_SUFFIXES = (".parquet", ".pq")


def _require_pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError(
            "reading Parquet needs pyarrow: pip install pyarrow (or 'tsbandit[parquet]'); "
            "or export the table as CSV") from None
    return pq


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def table_columns(path: str | Path) -> list[str]:
    """The column names of a CSV (its header) or Parquet file (its schema), in file order."""
    p = Path(path)
    if not p.is_file():
        raise InvalidLogError(f"no log file at {p}")
    if _is_parquet(p):
        return list(_require_pyarrow().read_schema(p).names)
    with open(p, newline="", encoding="utf-8") as fp:
        header = next(csv.reader(fp), None)
    if not header:
        raise InvalidLogError(f"{p} is empty (expected a CSV header line)")
    return [h.strip() for h in header]


def read_columns(path: str | Path, names: Sequence[str]) -> dict[str, list[Any]]:
    """The columns ``names`` of a CSV or Parquet file as lists (CSV values stay strings)."""
    p = Path(path)
    if _is_parquet(p):
        try:
            table = _require_pyarrow().read_table(p, columns=list(names))
        except (OSError, ValueError) as exc:
            raise InvalidLogError(f"{p}: {exc}") from None
        return {k: list(v) for k, v in table.to_pydict().items()}
    out: dict[str, list[Any]] = {n: [] for n in names}
    with open(p, newline="", encoding="utf-8") as fp:
        reader = csv.reader(fp)
        header = [h.strip() for h in next(reader)]
        idx = [header.index(n) for n in names]
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidLogError(
                    f"{p}: line {lineno} has {len(row)} fields, the header {len(header)}")
            for n, i in zip(names, idx, strict=True):
                out[n].append(row[i])
    return out


def _context_names(spec: str | Sequence[str] | None, columns: list[str]) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = spec.strip()
        if spec.endswith("*"):
            found = [c for c in columns if c.startswith(spec[:-1])]
            if not found:
                raise InvalidLogError(f"no column starts with {spec[:-1]!r} (columns: "
                                      f"{columns[:20]})")
            return found
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    return list(spec)


def _numbers(path: Path, name: str, values: list[Any]) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise InvalidLogError(
                f"{path}: column {name!r}, row {i + 1}: {v!r} is not a number") from None
    return out


def _actions(path: Path, values: list[Any], arms: Sequence[str] | None
             ) -> tuple[np.ndarray, tuple[str, ...]]:
    text = [str(v).strip() for v in values]
    if arms is not None:
        names = tuple(str(a) for a in arms)
        index = {a: i for i, a in enumerate(names)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise InvalidLogError(
                f"{path}: actions {unknown[:5]} are not in arms={list(names)[:10]}")
        return np.array([index[t] for t in text], dtype=np.intp), names
    if all(t.isdigit() for t in text):  # integer ids 0..K-1
        ids = np.array([int(t) for t in text], dtype=np.intp)
        k = int(ids.max()) + 1
        return ids, tuple(str(i) for i in range(k))
    names = tuple(sorted(set(text)))
    index = {a: i for i, a in enumerate(names)}
    return np.array([index[t] for t in text], dtype=np.intp), names


def load_table(
    path: str | Path,
    *,
    action_col: str = "action",
    reward_col: str = "reward",
    propensity_col: str = "propensity",
    context_cols: str | Sequence[str] | None = None,
    position_col: str | None = None,
    arms: Sequence[str] | None = None,
) -> LoggedData:
    """Load a CSV or Parquet log (``.parquet``/``.pq``: Parquet) as :class:`LoggedData`.

    See the module docstring for the columns. Raises :class:`InvalidLogError` for a missing
    file or column, a non-number, an unknown action or an impossible propensity, and
    :class:`~tsbandit.errors.ConfigurationError` when Parquet is asked for without pyarrow.
    """
    p = Path(path)
    columns = table_columns(p)
    ctx = _context_names(context_cols, columns)
    need = {"action": action_col, "reward": reward_col, "propensity": propensity_col}
    if position_col is not None:
        need["position"] = position_col
    for role, name in need.items():
        if name not in columns:
            raise InvalidLogError(
                f"{p} has no {role} column {name!r} (columns: {columns[:20]}); name it with "
                f"{role}_col= (--{role}-col)")
    missing = [c for c in ctx if c not in columns]
    if missing:
        raise InvalidLogError(f"{p} has no context columns {missing[:5]} (columns: "
                              f"{columns[:20]})")
    wanted = list(dict.fromkeys([*need.values(), *ctx]))
    data = read_columns(p, wanted)
    n = len(data[action_col])
    if n == 0:
        raise InvalidLogError(f"{p} has no rows")
    actions, names = _actions(p, data[action_col], arms)
    positions, n_pos = None, 1
    if position_col is not None:
        raw = [str(v).strip() for v in data[position_col]]
        try:
            slots = sorted(set(raw), key=float)
        except ValueError:
            slots = sorted(set(raw))
        slot_index = {s: i for i, s in enumerate(slots)}
        positions = np.array([slot_index[s] for s in raw], dtype=np.intp)
        n_pos = len(slots)
    contexts = (np.column_stack([_numbers(p, c, data[c]) for c in ctx]) if ctx else None)
    return LoggedData(
        actions=actions,
        rewards=_numbers(p, reward_col, data[reward_col]),
        propensities=_numbers(p, propensity_col, data[propensity_col]),
        n_actions=len(names),
        contexts=contexts,
        positions=positions,
        n_positions=n_pos,
        action_names=names,
    )
