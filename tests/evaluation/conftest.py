"""Fixtures of the off-policy evaluation tests: the Open Bandit Dataset sample, when present.

The sample lives outside the repository, in ``../shared/data/obd`` beside the repository root
(CI has it there), or wherever ``$TSBANDIT_SHARED_DATA`` points. In a user's clone without it,
the tests that need it are skipped and say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tsbandit.evaluation.obd import find_obd_dir

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def obd_dir() -> Path:
    found = find_obd_dir(REPO_ROOT)
    if found is None:
        pytest.skip(
            "Open Bandit Dataset sample not found: expected ../shared/data/obd beside the "
            "repository root, or set TSBANDIT_SHARED_DATA to the shared data directory"
        )
    return found
