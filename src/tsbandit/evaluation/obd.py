"""Load the Open Bandit Dataset (Saito et al., 2021) as :class:`~.data.LoggedData`.

The dataset (ZOZO, Inc., Apache-2.0; cite arXiv:2008.07146) logs a 3-slot fashion recommendation
widget under two behaviour policies, ``random`` (uniform) and ``bts`` (Bernoulli Thompson
sampling), for three campaigns (``all``, ``men``, ``women``). Layout::

    <root>/<behavior>/<campaign>/<campaign>.csv        one row per (impression, slot)
    <root>/<behavior>/<campaign>/item_context.csv      item features
    <root>/bts_prior/prior_bts.yaml                    production BTS Beta priors per campaign

Columns of the log: an unnamed index, ``timestamp``, ``item_id`` (the action), ``position``
(1, 2, 3; stored 0-based here), ``click`` (the reward), ``propensity_score`` (probability of the
item at that slot under the behaviour policy), ``user_feature_0..3`` (hashed categories) and
``user-item_affinity_<k>``. Only the standard library's ``csv`` and numpy are used.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError
from .data import InvalidLogError, LoggedData
from .jsonl import parse_timestamp

__all__ = [
    "find_obd_dir",
    "find_obd_prior",
    "load_obd",
    "load_obd_csv",
    "load_obd_prior",
    "read_bts_prior",
    "resolve_obd_log",
]

BEHAVIORS = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
CONTEXTS = ("none", "user", "affinity", "user+affinity")
N_POSITIONS = 3


def find_obd_dir(start: str | Path | None = None) -> Path | None:
    """The OBD directory, if one can be found, else ``None``.

    Looks at ``$TSBANDIT_SHARED_DATA`` (the shared data directory, or its parent), then at
    ``shared/data/obd`` beside ``start`` (a repository root). Without ``start``: beside the
    current directory or any of its parents, and beside the source checkout this module runs
    from (only when it is one: a ``pyproject.toml`` above ``src/``; an installed wheel has no
    repository around it).
    """
    candidates: list[Path] = []
    env = os.environ.get("TSBANDIT_SHARED_DATA")
    if env:
        base = Path(env)
        candidates += [base / "obd", base / "data" / "obd", base]
    if start is not None:
        roots = [Path(start)]
    else:
        cwd = Path.cwd()
        roots = [cwd, *cwd.parents]
        checkout = Path(__file__).resolve().parents[3]
        if (checkout / "pyproject.toml").is_file():
            roots.append(checkout)
    for root in roots:
        candidates += [root / "shared" / "data" / "obd", root.parent / "shared" / "data" / "obd"]
    for c in candidates:
        if (c / "random").is_dir() and (c / "bts").is_dir():
            return c
    return None


def _one_hot(columns: Sequence[Sequence[str]]) -> np.ndarray:
    blocks = []
    for col in columns:
        cats = sorted(set(col))
        idx = {c: i for i, c in enumerate(cats)}
        blocks.append(np.eye(len(cats))[[idx[v] for v in col]])
    return np.hstack(blocks)


def _check_choice(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise ConfigurationError(f"{name} == {value!r}, must be one of {list(options)}")


def load_obd(root: str | Path, behavior: str = "random", campaign: str = "all", *,
             context: str = "none") -> LoggedData:
    """Load one behaviour policy's log of one campaign.

    Parameters
    ----------
    root
        The ``obd`` directory (see :func:`find_obd_dir`).
    behavior
        ``"random"`` or ``"bts"``.
    campaign
        ``"all"``, ``"men"`` or ``"women"``.
    context
        Context features: ``"none"``, ``"user"`` (one-hot user features), ``"affinity"``
        (user-item affinities) or ``"user+affinity"``.

    Returns
    -------
    LoggedData
        ``n_positions == 3``, ``positions`` 0-based, rows in time order, item ids as action
        names and the numeric ``item_feature_0`` plus one-hot item categories as
        ``action_context``.
    """
    _check_choice("behavior", behavior, BEHAVIORS)
    _check_choice("campaign", campaign, CAMPAIGNS)
    return load_obd_csv(Path(root) / behavior / campaign / f"{campaign}.csv", context=context)


def load_obd_csv(log_path: str | Path, *, context: str = "none") -> LoggedData:
    """Load one OBD log file; ``item_context.csv`` is read from the same folder if present.

    See :func:`load_obd` for ``context`` and the result.
    """
    _check_choice("context", context, CONTEXTS)
    log_path = Path(log_path)
    folder = log_path.parent
    if not log_path.is_file():
        raise InvalidLogError(f"no Open Bandit Dataset log at {log_path}")
    with open(log_path, newline="", encoding="utf-8") as fp:
        rows = list(csv.DictReader(fp))
    if not rows:
        raise InvalidLogError(f"{log_path} has no rows")
    need = ("timestamp", "item_id", "position", "click", "propensity_score")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise InvalidLogError(f"{log_path} lacks columns {missing}")
    items = _item_context(folder / "item_context.csv")
    try:
        actions = np.array([int(r["item_id"]) for r in rows])
        positions = np.array([int(r["position"]) for r in rows]) - 1
        clicks = np.array([float(r["click"]) for r in rows])
        pscore = np.array([float(r["propensity_score"]) for r in rows])
    except ValueError as exc:
        raise InvalidLogError(f"{log_path}: {exc}") from None
    n_actions = len(items[0]) if items is not None else int(actions.max()) + 1
    contexts = None
    if context != "none":
        parts = []
        if "user" in context:
            ucols = sorted(c for c in rows[0] if c.startswith("user_feature_"))
            parts.append(_one_hot([[r[c] for r in rows] for c in ucols]))
        if "affinity" in context:
            acols = sorted((c for c in rows[0] if c.startswith("user-item_affinity_")),
                           key=lambda c: int(c.rsplit("_", 1)[1]))
            parts.append(np.array([[float(r[c]) for c in acols] for r in rows]))
        contexts = np.hstack(parts)
    ts = np.array([parse_timestamp(r["timestamp"]) for r in rows])
    order = np.argsort(ts, kind="stable")
    return LoggedData(
        actions=actions[order], rewards=clicks[order], propensities=pscore[order],
        n_actions=n_actions, contexts=None if contexts is None else contexts[order],
        positions=positions[order], n_positions=N_POSITIONS, timestamps=ts[order],
        action_names=tuple(str(i) for i in range(n_actions)),
        action_context=None if items is None else items[1],
    )


def _item_context(path: Path) -> tuple[list[int], np.ndarray] | None:
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fp:
        rows = sorted(csv.DictReader(fp), key=lambda r: int(r["item_id"]))
    ids = [int(r["item_id"]) for r in rows]
    if ids != list(range(len(ids))):
        raise InvalidLogError(f"{path}: item ids are not 0..{len(ids) - 1}")
    numeric = np.array([[float(r["item_feature_0"])] for r in rows])
    cats = [[r[f"item_feature_{j}"] for r in rows] for j in (1, 2, 3)
            if f"item_feature_{j}" in rows[0]]
    return ids, np.hstack([numeric, _one_hot(cats)]) if cats else numeric


def load_obd_prior(root: str | Path, campaign: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """The production BTS priors ``(alpha, beta)``, each ``(n_items,)``, of a campaign, from
    ``<root>/bts_prior/prior_bts.yaml`` (see :func:`read_bts_prior`)."""
    return read_bts_prior(Path(root) / "bts_prior" / "prior_bts.yaml", campaign)


def find_obd_prior(start: str | Path) -> Path | None:
    """``bts_prior/prior_bts.yaml`` in ``start`` or the nearest folder above it, else ``None``.

    The dataset keeps it at its root, two levels above a campaign's log."""
    here = Path(start).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / "bts_prior" / "prior_bts.yaml"
        if candidate.is_file():
            return candidate
    return None


def _split_campaign(spec: str) -> tuple[str | None, str]:
    behavior, _, campaign = spec.strip().strip("/").rpartition("/")
    if behavior:
        _check_choice("behavior", behavior, BEHAVIORS)
    _check_choice("campaign", campaign, CAMPAIGNS)
    return behavior or None, campaign


def resolve_obd_log(path: str | Path, campaign: str | None = None) -> tuple[Path, str | None]:
    """The log file an OBD path means, and its campaign name (``None`` if unknown).

    ``path`` may be the log CSV, its campaign folder (``obd/random/all``), a behaviour folder
    (``obd/random``, with ``campaign="all"``) or the dataset root (``obd``, with
    ``campaign="random/all"``). ``campaign`` (``"all"``, ``"men"``, ``"women"``, optionally
    prefixed by the behaviour ``"random/"`` or ``"bts/"``) also names the campaign of a log
    whose folder does not.
    """
    p = Path(path)
    behavior, name = _split_campaign(campaign) if campaign else (None, None)
    if p.is_dir() and (p / f"{p.name}.csv").is_file():
        p = p / f"{p.name}.csv"
    elif p.is_dir() and all((p / b).is_dir() for b in BEHAVIORS):
        if behavior is None or name is None:
            raise ConfigurationError(
                f"{p} is the Open Bandit Dataset root; pick a log with --campaign "
                f"BEHAVIOR/CAMPAIGN, e.g. --campaign random/all (behaviors {list(BEHAVIORS)}, "
                f"campaigns {list(CAMPAIGNS)})")
        p = p / behavior / name / f"{name}.csv"
    elif p.is_dir() and any((p / c).is_dir() for c in CAMPAIGNS):
        if name is None:
            raise ConfigurationError(
                f"{p} holds campaign folders; pick one with --campaign {'|'.join(CAMPAIGNS)}")
        if behavior is not None and behavior != p.name:
            raise ConfigurationError(f"--campaign {campaign!r} but {p} is the {p.name!r} folder")
        p = p / name / f"{name}.csv"
    elif p.is_dir():
        raise InvalidLogError(f"{p} is a folder without an Open Bandit Dataset log "
                              "(<campaign>/<campaign>.csv)")
    if name is None:
        for guess in (p.parent.name, p.stem):
            if guess in CAMPAIGNS:
                name = guess
                break
    return p, name


def read_bts_prior(path: str | Path, campaign: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """The production BTS priors ``(alpha, beta)``, each ``(n_items,)``, of a campaign.

    Reads a ``prior_bts.yaml`` with a small parser for its fixed layout (campaign ->
    ``alpha``/``beta`` -> list of numbers), so PyYAML is not needed.
    """
    _check_choice("campaign", campaign, CAMPAIGNS)
    path = Path(path)
    if not path.is_file():
        raise InvalidLogError(f"no BTS prior file at {path}")
    table: dict[str, dict[str, list[float]]] = {}
    top: str | None = None
    key: str | None = None
    with open(path, encoding="utf-8") as fp:
        for lineno, raw in enumerate(fp, start=1):
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            text = line.strip()
            if text.startswith("- ") and top is not None and key is not None:
                try:
                    table[top][key].append(float(text[2:]))
                except ValueError:
                    raise InvalidLogError(f"{path}:{lineno}: {text!r} is not a number") from None
            elif text.endswith(":") and indent == 0:
                top, key = text[:-1], None
                table[top] = {}
            elif text.endswith(":") and top is not None:
                key = text[:-1]
                table[top][key] = []
            else:
                raise InvalidLogError(f"{path}:{lineno}: unexpected line {text!r}")
    try:
        alpha = np.array(table[campaign]["alpha"])
        beta = np.array(table[campaign]["beta"])
    except KeyError:
        raise InvalidLogError(f"{path} has no alpha/beta for campaign {campaign!r}") from None
    if alpha.shape != beta.shape or (alpha <= 0).any() or (beta <= 0).any():
        raise InvalidLogError(
            f"{path}: alpha and beta of {campaign!r} must be positive and of one length")
    return alpha, beta
