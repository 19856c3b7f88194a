"""The CLI's usage error, in a module of its own so every command module can import it."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A flag or argument was wrong; one line on stderr, status 1 (consul's) or 2 (dev, demo)."""
