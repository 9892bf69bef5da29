"""A target policy read from a file: per-round action probabilities computed elsewhere.

The file holds ``pi_e`` for every round of the log, in the log's row order (the file order of a
CSV/Parquet log; time order for the JSON Lines and Open Bandit Dataset loaders, which is the
files' own order when they are written in time order):

- ``.npy``: one array ``(n_rounds, n_actions)``, or ``(n_rounds, n_actions, n_positions)`` for a
  slate log (``pi[i, a, k]``: probability of action ``a`` at slot ``k``);
- ``.npz``: the same array, alone in the archive or under the key ``action_dist`` (the Open
  Bandit Pipeline's name), ``pi_e`` or ``probs``;
- ``.jsonl`` / ``.json``: one JSON list per line (round): ``n_actions`` numbers, or
  ``n_actions`` lists of ``n_positions`` numbers.

Arrays are read without pickle. Every round's probabilities must be finite, >= 0 and sum to 1
(over actions, for every slot), within 1e-6; errors name the file and the first bad round.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError
from .data import LoggedData
from .targets import TargetPolicy

__all__ = ["FilePolicy", "load_action_probs"]

NPZ_KEYS = ("action_dist", "pi_e", "probs")
_SUM_TOL = 1e-6


def load_action_probs(path: str | Path) -> np.ndarray:
    """Read per-round action probabilities from ``.npy``, ``.npz`` or JSON Lines (unchecked
    beyond being an array of numbers; :class:`FilePolicy` checks them against a log)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigurationError(f"no target-policy file at {p}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key = keys[0] if len(keys) == 1 else next((k for k in NPZ_KEYS if k in keys),
                                                          None)
                if key is None:
                    raise ConfigurationError(
                        f"{p} holds arrays {keys}; name the probabilities one of {list(NPZ_KEYS)}")
                arr = z[key]
        elif suffix in (".jsonl", ".json", ".ndjson"):
            rows = []
            with open(p, encoding="utf-8") as fp:
                for lineno, line in enumerate(fp, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ConfigurationError(
                                f"{p}: line {lineno}: not JSON ({exc.msg})") from None
            arr = np.array(rows, dtype=np.float64)
        else:
            raise ConfigurationError(
                f"{p}: unknown target-policy file type {suffix!r}; use .npy, .npz or .jsonl")
    except (ValueError, TypeError, OSError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"{p}: cannot read action probabilities ({exc})") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ConfigurationError(f"{p}: action probabilities must be numbers")
    return np.asarray(arr, dtype=np.float64)


class FilePolicy(TargetPolicy):
    """Per-round action probabilities from a file (see the module docstring).

    Parameters
    ----------
    path
        The ``.npy``, ``.npz`` or ``.jsonl`` file.
    """

    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.probs = load_action_probs(self.path)

    def action_dist(self, data: LoggedData, rng: np.random.Generator | None = None
                    ) -> np.ndarray:
        """The file's ``(n, K)`` or ``(n, K, L)`` array, checked against ``data``."""
        pi, p = self.probs, self.path
        n, k, slots = data.n_rounds, data.n_actions, data.n_positions
        shapes = [(n, k)] + ([(n, k, slots)] if slots > 1 else [])
        if pi.shape not in shapes:
            want = " or ".join(str(s) for s in shapes)
            hint = ""
            if pi.ndim >= 1 and pi.shape[0] != n:
                hint = f": {pi.shape[0]} rows for a log of {n} rounds"
            elif pi.ndim >= 2 and pi.shape[1] != k:
                hint = f": {pi.shape[1]} actions for a log of {k} actions"
            raise ConfigurationError(f"{p}: action probabilities of shape {pi.shape}, expected "
                                     f"{want}{hint}")
        bad = ~np.isfinite(pi) | (pi < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(n, -1).any(axis=1))[0])
            raise ConfigurationError(
                f"{p}: round {i} has a negative or non-finite probability")
        sums = pi.sum(axis=1)  # (n,) or (n, L)
        off = np.abs(sums - 1.0).reshape(n, -1).max(axis=1)
        if n and off.max() > _SUM_TOL:
            i = int(np.argmax(off > _SUM_TOL))
            raise ConfigurationError(
                f"{p}: round {i}'s probabilities sum to {np.atleast_1d(sums[i]).tolist()}, "
                "must sum to 1 (over actions, for every slot)")
        return pi
