"""Classification data as a contextual bandit (the standard "supervised-to-bandit" bake-off).

Each round a trial meets the next example of its own random permutation of the data; the arms
are the classes; the reward is 1 when the chosen class is the label and 0 otherwise, and only the
chosen arm's reward is revealed. Features are standardized over the data set and an intercept
is appended. With ``passes > 1`` the data are streamed again over a fresh permutation.

The loaders use scikit-learn's bundled data sets (the optional ``sklearn`` extra).

Examples
--------
>>> import numpy as np
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
>>> env = SupervisedBandit(X, y)
>>> env.n_arms, env.n_features, env.natural_rounds
(2, 2, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .environments import Block, Environment, Episode, _check_trials

__all__ = ["DATASETS", "SupervisedBandit", "load_dataset"]

DATASETS: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits")


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """``(X, y, feature_names, class_names)`` of one of scikit-learn's bundled data sets.

    Raises
    ------
    ConfigurationError
        For an unknown name.
    ImportError
        When scikit-learn is not installed (``pip install 'tsbandit[sklearn]'``).
    """
    if name not in DATASETS:
        raise ConfigurationError(f"unknown data set {name!r}; known: {list(DATASETS)}")
    try:
        from sklearn import datasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the supervised bake-off needs scikit-learn: pip install 'tsbandit[sklearn]'"
        ) from exc
    bunch = getattr(datasets, f"load_{name}")()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    features = [str(f) for f in getattr(bunch, "feature_names", range(X.shape[1]))]
    classes = [str(c) for c in getattr(bunch, "target_names", np.unique(y))]
    return X, y, features, classes


class SupervisedBandit(Environment):
    """Any classification data ``(X, y)`` as a contextual bandit.

    Parameters
    ----------
    X
        ``(N, p)`` features.
    y
        ``(N,)`` labels (any hashable values; the sorted distinct labels are the arms).
    passes
        Times the data are streamed (each over a fresh permutation); sets
        :attr:`natural_rounds` ``= passes * N``.
    standardize
        Center and scale every feature by its mean and sd over the data set (constant features
        are left at 0).
    intercept
        Append a constant 1 feature.
    class_names, feature_names
        Optional names for reports.
    """

    name = "supervised"

    def __init__(self, X: Any, y: Any, passes: int = 1, standardize: bool = True,
                 intercept: bool = True, class_names: Sequence[str] | None = None,
                 feature_names: Sequence[str] | None = None, name: str | None = None) -> None:
        Xa = np.asarray(X, dtype=np.float64)
        ya = np.asarray(y)
        if Xa.ndim != 2 or ya.ndim != 1 or Xa.shape[0] != ya.shape[0] or Xa.shape[0] < 2:
            raise ConfigurationError(
                f"X has shape {Xa.shape} and y {ya.shape}; expected (N, p) and (N,), N >= 2")
        if not np.all(np.isfinite(Xa)):
            raise ConfigurationError("X contains NaN or infinite values")
        if isinstance(passes, bool) or int(passes) != passes or passes < 1:
            raise ConfigurationError(f"passes == {passes!r}, must be an integer >= 1")
        labels, codes = np.unique(ya, return_inverse=True)
        if standardize:
            mu, sd = Xa.mean(axis=0), Xa.std(axis=0)
            Xa = np.where(sd > 0, (Xa - mu) / np.where(sd > 0, sd, 1.0), 0.0)
        fnames = list(feature_names) if feature_names is not None else [
            f"x{i}" for i in range(Xa.shape[1])]
        if intercept:
            Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1))])
            fnames.append("const")
        cnames = (list(class_names) if class_names is not None and len(class_names) ==
                  labels.shape[0] else [str(v) for v in labels])
        super().__init__(cnames, fnames)
        if name:
            self.name = name
        self._X = Xa
        self._X.setflags(write=False)
        self._y = codes.astype(np.int64)
        self.passes = int(passes)

    @classmethod
    def from_sklearn(cls, dataset: str, passes: int = 1, **kwargs: Any) -> SupervisedBandit:
        """One of :data:`DATASETS` (``iris``, ``wine``, ``breast_cancer``, ``digits``)."""
        X, y, features, classes = load_dataset(dataset)
        return cls(X, y, passes=passes, class_names=classes, feature_names=features,
                   name=dataset, **kwargs)

    @property
    def n_examples(self) -> int:
        """Number of examples ``N``."""
        return int(self._X.shape[0])

    @property
    def natural_rounds(self) -> int:
        """``passes * N``: the length of the stream."""
        return self.passes * self.n_examples

    def episode(self, n_trials: int, n_rounds: int, seed: np.random.SeedSequence) -> Episode:
        _check_trials(n_trials, n_rounds)
        rng = np.random.default_rng(seed)
        N = self.n_examples
        n_pass = -(-int(n_rounds) // N)
        order = np.concatenate([rng.permuted(np.tile(np.arange(N), (n_trials, 1)), axis=1)
                                for _ in range(n_pass)], axis=1)[:, :n_rounds]
        return _SupervisedEpisode(self, np.ascontiguousarray(order.T))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "examples": self.n_examples, "passes": self.passes}


class _SupervisedEpisode(Episode):
    def __init__(self, env: SupervisedBandit, order: np.ndarray) -> None:
        self.env = env
        self.n_trials = int(order.shape[1])
        self._order = order                      # (n_rounds, n_trials) example indices
        self._eye = np.eye(env.n_arms)

    def block(self, start: int, size: int) -> Block:
        idx = self._order[start:start + size]
        return Block(start, self.env._X[idx], self._eye[self.env._y[idx]], None)
