"""Test levels by directory: tests/unit → `unit`, tests/integration → `integration`, tests/cluster → `cluster`.

Run one level alone with `-m unit`, `-m integration` or `-m cluster`.
"""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "examples")]

LEVELS = ("unit", "integration", "cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(os.path.join(ROOT, "tests")).parts
        if parts and parts[0] in LEVELS:
            item.add_marker(getattr(pytest.mark, parts[0]))
