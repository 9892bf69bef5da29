"""Every docstring example of the installed package runs and prints what it says.

The modules are found by import (``pkgutil.walk_packages`` over the imported ``tsbandit``), not
by path, so the examples run against whatever is installed: the wheel in CI (``make test``), the
source tree with an editable install.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tsbandit


def _modules() -> list[str]:
    names = [tsbandit.__name__]
    names += [m.name for m in pkgutil.walk_packages(tsbandit.__path__, prefix="tsbandit.")]
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    return [t for t in tests if t.examples]


MODULES = [name for name in _modules() if _examples(name)]


def test_the_package_has_examples_to_run():
    # a walk that found nothing (say, an import error swallowed) must not pass as "no failures"
    assert len(MODULES) >= 40, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out: list[str] = []
    for test in _examples(name):
        runner.run(test, out=out.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(out)
