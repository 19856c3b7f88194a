"""The pytest plugin loads where pytest-asyncio is not installed (fast check; the fresh-venv
test in test_plugin_fresh_venv.py is the full one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_BLOCKED = """
import sys

sys.modules["pytest_asyncio"] = None  # as if not installed: find_spec None, import fails
import consul_streams.testing.pytest_plugin as plugin
print(sys.modules.get("pytest_asyncio") is not None, plugin.consul_client.__name__)
"""


def test_the_plugin_imports_without_pytest_asyncio() -> None:
    """It used to import pytest_asyncio at load: every pytest run without it failed (rc 3)."""
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "consul_client"]
