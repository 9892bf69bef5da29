"""Additive sufficient statistics: the only learned state a reward model has.

A :class:`Stats` is a small set of named float64 arrays. Every array has the layout
``(*batch_shape, n_arms, *event_shape)``: an optional leading batch (simulated trials, shards), then
one slot per arm, then the per-arm shape (``()`` for counts, ``(d,)`` for ``b``, ``(d, d)`` for
``A``). Statistics of two disjoint sets of observations add up to the statistics of their union,
which is why batching, delayed rewards, sharded workers and decay are all one line of arithmetic.

Examples
--------
>>> import numpy as np
>>> s = Stats({"successes": np.array([1.0, 0.0]), "failures": np.array([0.0, 2.0])})
>>> (s + s)["failures"].tolist()
[0.0, 4.0]
>>> s.scaled(0.5)["successes"].tolist()
[0.5, 0.0]
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import SerializationError

__all__ = ["Stats"]


class Stats(Mapping[str, np.ndarray]):
    """Named float64 arrays with the layout ``(*batch_shape, n_arms, *event_shape)``.

    Parameters
    ----------
    arrays
        Mapping of statistic name to array. Arrays are converted to float64 (not copied when
        they already are).
    batch_ndim
        Number of leading batch axes; the arm axis is axis ``batch_ndim`` of every array.
    """

    __slots__ = ("_arrays", "batch_ndim")

    def __init__(self, arrays: Mapping[str, Any], batch_ndim: int = 0) -> None:
        self._arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
        self.batch_ndim = int(batch_ndim)

    # Mapping protocol --------------------------------------------------------------------
    def __getitem__(self, key: str) -> np.ndarray:
        return self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._arrays.items())
        return f"Stats({shapes}, batch_ndim={self.batch_ndim})"

    # Shape helpers -----------------------------------------------------------------------
    @property
    def n_arms(self) -> int:
        """Number of arms (length of the arm axis)."""
        first = next(iter(self._arrays.values()))
        return int(first.shape[self.batch_ndim])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch shape shared by all arrays."""
        first = next(iter(self._arrays.values()))
        return tuple(first.shape[: self.batch_ndim])

    def _check_compatible(self, other: Stats) -> None:
        if set(self._arrays) != set(other._arrays):
            raise SerializationError(
                f"cannot combine statistics with fields {sorted(self._arrays)} "
                f"and {sorted(other._arrays)}"
            )

    # Arithmetic (always returns new arrays) ----------------------------------------------
    def __add__(self, other: Stats) -> Stats:
        self._check_compatible(other)
        nd = max(self.batch_ndim, other.batch_ndim)
        return Stats({k: v + other._arrays[k] for k, v in self._arrays.items()}, nd)

    def __sub__(self, other: Stats) -> Stats:
        self._check_compatible(other)
        nd = max(self.batch_ndim, other.batch_ndim)
        return Stats({k: v - other._arrays[k] for k, v in self._arrays.items()}, nd)

    def scaled(self, gamma: float | np.ndarray) -> Stats:
        """Statistics multiplied by ``gamma`` (decay); ``gamma`` may be per batch element."""
        g = np.asarray(gamma, dtype=np.float64)
        out = {}
        for k, v in self._arrays.items():
            gk = g.reshape(g.shape + (1,) * (v.ndim - g.ndim)) if g.ndim else g
            out[k] = v * gk
        return Stats(out, self.batch_ndim)

    def copy(self) -> Stats:
        """Deep copy."""
        return Stats({k: v.copy() for k, v in self._arrays.items()}, self.batch_ndim)

    def iadd(self, other: Stats) -> None:
        """Add ``other`` in place (the one mutating operation)."""
        self._check_compatible(other)
        for k, v in self._arrays.items():
            v += other._arrays[k]

    def allclose(self, other: Stats, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
        """True when both have the same fields and numerically equal arrays."""
        if set(self._arrays) != set(other._arrays):
            return False
        return all(
            np.allclose(v, other._arrays[k], rtol=rtol, atol=atol)
            for k, v in self._arrays.items()
        )

    # Arm axis edits -----------------------------------------------------------------------
    def take_arms(self, indices: np.ndarray | list[int]) -> Stats:
        """Statistics of the arms at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.intp)
        return Stats(
            {k: np.take(v, idx, axis=self.batch_ndim) for k, v in self._arrays.items()},
            self.batch_ndim,
        )

    def append_arms(self, other: Stats) -> Stats:
        """Arms of ``self`` followed by the arms of ``other``."""
        self._check_compatible(other)
        return Stats(
            {
                k: np.concatenate([v, other._arrays[k]], axis=self.batch_ndim)
                for k, v in self._arrays.items()
            },
            self.batch_ndim,
        )

    # Serialization ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``{"batch_ndim": n, "arrays": {name: {"shape", "data"}}}``.

        ``data`` is the base64 of the little-endian float64 bytes, so floats round-trip exactly.
        """
        return {
            "batch_ndim": self.batch_ndim,
            "arrays": {
                k: {
                    "shape": list(v.shape),
                    "data": base64.b64encode(np.ascontiguousarray(v, dtype="<f8").tobytes()).decode(
                        "ascii"
                    ),
                }
                for k, v in self._arrays.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stats:
        """Inverse of :meth:`to_dict`; raises :class:`SerializationError` on malformed input."""
        try:
            arrays = {}
            for k, spec in data["arrays"].items():
                raw = base64.b64decode(spec["data"], validate=True)
                shape = tuple(int(n) for n in spec["shape"])
                arr = np.frombuffer(raw, dtype="<f8")
                if arr.size != int(np.prod(shape, dtype=np.int64)):
                    raise SerializationError(
                        f"statistic {k!r}: {arr.size} values do not fill shape {shape}"
                    )
                arrays[k] = arr.reshape(shape).astype(np.float64)
            return cls(arrays, int(data.get("batch_ndim", 0)))
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"malformed statistics: {exc}") from exc
