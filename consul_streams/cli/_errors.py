"""The CLI's usage error, in a module of its own so every command module can import it."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A flag or argument was wrong; reported as one line with exit status 2."""
