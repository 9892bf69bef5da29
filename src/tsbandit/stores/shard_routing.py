"""Where one piece of a sharded bandit lives: the pure rules of :mod:`tsbandit.stores.sharded`.

A bandit ``name`` created with ``"shards": S`` in its configuration is S bandits of the wrapped
store (:func:`shard_names`): shard 0 is ``name`` itself (so a bandit of one shard is stored
exactly as before, and the shard count is found by reading it), shard ``i >= 1`` is
``name#j`` (on Redis its own hash tag ``{name#j}``), the number ``j`` chosen so that the S
shards' Cluster hash slots lie evenly around the 16384 slots: a Cluster whose primaries serve
contiguous, balanced slot ranges (what ``redis-cli --cluster create`` makes) then holds the
shards of a bandit with S <= primaries on S different primaries, instead of leaving it to
chance (three hashed names on three primaries share one with probability 7/9).

* a decision record lives on the shard its id names (:func:`shard_of_id`): an engine id
  ``<bandit>~<32 hex>`` by its first 8 hex digits modulo S, any other id by a CRC-32 of it;
  a ranking's or a metric's extra records (``<id>/<slot or metric>``) follow their decision;
* the engine draws the ids of one batch on one shard (:func:`shard_tokens`), so a batch is one
  atomic script and its reward is a single-slot script;
* a sticky assignment lives on its key's shard (:func:`shard_of_key`);
* the event cursor of a sharded bandit is the cursors of all shards and the shard the next page
  starts with (:func:`split_cursor`, :func:`join_cursor`).

>>> shard_names("ads", 3)
('ads', 'ads#5305', 'ads#5919')
>>> [cluster_slot(n) for n in shard_names("ads", 3)]
[9537, 14999, 4075]
>>> shard_of_id("ads~" + "00000005" + "0" * 24 + "/click", 3)
2
>>> toks = shard_tokens(["00000001" + "a" * 24, "0000000b" + "b" * 24], 3)
>>> {shard_of_id("ads~" + t, 3) for t in toks}
{1}
>>> join_cursor(1, ["7", None, "12-0"]), split_cursor("1|7||12-0", 3)
('1|7||12-0', (1, ['7', None, '12-0']))
"""

from __future__ import annotations

import binascii
import bisect
import functools
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError
from .validation import SHARD_SEP

__all__ = ["MAX_SHARDS", "SHARDS_KEY", "check_shards", "cluster_slot", "join_cursor",
           "shard_count", "shard_names", "shard_of_id", "shard_of_key", "shard_tokens",
           "split_cursor"]

#: The configuration key holding a bandit's shard count (absent: 1).
SHARDS_KEY = "shards"
#: The most shards a bandit may have.
MAX_SHARDS = 64

_HEX = frozenset("0123456789abcdef")
_SLOTS = 16384
_CANDIDATES = 10_000
_SPAN = 1 << 32


def check_shards(value: Any) -> int:
    """A shard count: an int from 1 to :data:`MAX_SHARDS` (``ConfigurationError`` otherwise).

    >>> check_shards(3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise ConfigurationError(f"shards == {value!r}, must be an int from 1 to {MAX_SHARDS}")
    return value


def shard_count(config: Mapping[str, Any], default: int = 1) -> int:
    """The shard count a bandit's configuration names (``default`` when it names none)."""
    return check_shards(config.get(SHARDS_KEY, default))


def cluster_slot(tag: str) -> int:
    """The Redis Cluster hash slot of the hash tag ``tag`` (CRC-16/XMODEM modulo 16384)."""
    return binascii.crc_hqx(tag.encode(), 0) % _SLOTS


@functools.lru_cache(maxsize=1024)
def shard_names(name: str, shards: int) -> tuple[str, ...]:
    """The wrapped store's names of the shards of bandit ``name`` (shard 0 is ``name``):
    shard ``i`` is ``name#j`` with the ``j`` (1-9999, each used once) whose hash slot is
    nearest to ``slot(name) + i * 16384 / shards`` around the ring."""
    if shards == 1:
        return (name,)
    first = cluster_slot(name)
    ring = sorted((cluster_slot(f"{name}{SHARD_SEP}{j}"), j) for j in range(1, _CANDIDATES))
    out, taken = [name], set()
    for i in range(1, shards):
        target = (first + i * _SLOTS // shards) % _SLOTS
        at = bisect.bisect_left(ring, (target, 0))
        near = [ring[(at + d) % len(ring)] for d in range(-shards - 1, shards + 1)]
        _, j = min((min(abs(s - target), _SLOTS - abs(s - target)), j)
                   for s, j in near if j not in taken)
        taken.add(j)
        out.append(f"{name}{SHARD_SEP}{j}")
    return tuple(out)


def shard_of_id(decision_id: str, shards: int) -> int:
    """The shard of a decision record: that of its decision (the id before any ``/``)."""
    if shards == 1:
        return 0
    base = decision_id.split("/", 1)[0]
    _, sep, token = base.rpartition("~")
    if sep and len(token) == 32 and _HEX.issuperset(token):
        return int(token[:8], 16) % shards
    return zlib.crc32(base.encode()) % shards


def shard_of_key(key: str, shards: int) -> int:
    """The shard of a sticky assignment's key (a user id)."""
    return 0 if shards == 1 else zlib.crc32(key.encode()) % shards


def shard_tokens(tokens: Sequence[str], shards: int) -> list[str]:
    """Decision-id tokens (32 hex digits) moved onto one shard, the first token's: each keeps
    its last 24 digits and gets first 8 that are congruent to that shard modulo ``shards``.
    Deterministic (an idempotency key's tokens stay the key's), uniform when the tokens are.
    """
    out = list(tokens)
    if shards <= 1 or not out:
        return out
    target = int(out[0][:8], 16) % shards
    for j, t in enumerate(out):
        v = int(t[:8], 16)
        w = v - v % shards + target
        if w >= _SPAN:
            w -= shards
        out[j] = f"{w:08x}{t[8:]}"
    return out


def join_cursor(start: int, cursors: Sequence[str | None]) -> str:
    """A sharded event cursor: the shard the next page starts with, then each shard's cursor
    (empty for a shard read from its start)."""
    return "|".join([str(start), *(c or "" for c in cursors)])


def split_cursor(after: str | None, shards: int) -> tuple[int, list[str | None]]:
    """Inverse of :func:`join_cursor`; None reads every shard from its start, and a cursor
    without ``|`` (one read before the bandit had shards) is shard 0's."""
    if after is None:
        return 0, [None] * shards
    if not isinstance(after, str):
        raise ConfigurationError(f"cursor {after!r} is not a cursor of this store")
    parts = after.split("|")
    if len(parts) == 1:
        return 0, [after, *([None] * (shards - 1))]
    if len(parts) != shards + 1 or not parts[0].isdigit() or int(parts[0]) >= shards:
        raise ConfigurationError(f"cursor {after!r} is not a cursor of this bandit's "
                                 f"{shards} shards")
    return int(parts[0]), [p or None for p in parts[1:]]
