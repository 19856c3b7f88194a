"""Fixtures shared by the watch tests."""

from __future__ import annotations

import pytest

from consul_streams import _share


@pytest.fixture(params=["inline", "task"])
def poll_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test twice: a single consumer running its poll in its own task (the default on
    Python >= 3.11), and every poll in a task of its own (Python 3.10, and shared polls)."""
    inline = request.param == "inline"
    if inline and not _share.INLINE:
        pytest.skip("a poll runs in its consumer's task only on Python >= 3.11")
    monkeypatch.setattr(_share, "INLINE", inline)
    return str(request.param)
