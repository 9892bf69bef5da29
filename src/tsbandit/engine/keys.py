"""Idempotency keys: a retried decision request answers the decisions its key recorded.

The decision id is derived from the key (``sha256``), so the store's atomic "insert unless the
id exists" is also the key -> decision mapping, on every store and across workers; the request
is hashed into the pending payload so a key reused for another request is told apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigurationError

__all__ = ["IDEMPOTENCY_KEY_PATTERN", "check_idempotency_key", "keyed_tokens", "request_hash"]

#: An idempotency key: 1-255 printable ASCII characters, no spaces (the service's header).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def check_idempotency_key(key: Any) -> str:
    """``key`` if it is 1-255 printable ASCII characters without spaces, else
    :class:`~tsbandit.errors.ConfigurationError`.

    >>> check_idempotency_key("order-42")
    'order-42'
    """
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY_RE.match(key):
        raise ConfigurationError(f"idempotency key == {key!r}, must be 1-255 printable ASCII "
                                 "characters without spaces")
    return key


def keyed_tokens(key: str, count: int) -> list[str]:
    """Decision-id tokens (32 hex digits) derived from an idempotency key, one per decision."""
    return [hashlib.sha256(f"tsbandit-idempotency\0{key}\0{i}".encode()).hexdigest()[:32]
            for i in range(count)]


def request_hash(count: int, x: np.ndarray | None, k: int, eligible: list[str] | None,
                 user_ids: Sequence[str | None] | None) -> str:
    """A digest of a decision request (what a key's replay must match)."""
    request = json.dumps(
        [count, None if x is None else x.tolist(), k, eligible,
         None if user_ids is None else list(user_ids)], separators=(",", ":"))
    return hashlib.sha256(request.encode()).hexdigest()[:32]
