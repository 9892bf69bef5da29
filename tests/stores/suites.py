"""Running a store test suite again on another kind of store (a sharded one)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any


def suite_functions(module: ModuleType, excluded: Mapping[str, str], fixtures: Iterable[str],
             suffix: str = "") -> dict[str, Callable[..., Any]]:
    """``module``'s test functions that take one of ``fixtures``, but for those ``excluded``
    (name -> why), named with ``suffix``: to put in a test module's globals, where pytest then
    runs them with that module's fixtures."""
    wanted = set(fixtures)
    out = {}
    for name in dir(module):
        fn = getattr(module, name)
        if (name.startswith("test_") and callable(fn) and name not in excluded
                and wanted & set(fn.__code__.co_varnames[:fn.__code__.co_argcount])):
            out[name + suffix] = fn
    return out
