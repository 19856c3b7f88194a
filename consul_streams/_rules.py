"""Pure helpers shared by the client and the dev agent: Go durations and Consul's index rules.

Nothing here does I/O or imports anything else from the package, so the client and the dev
agent (``consul_streams.testing``) can share these rules without sharing behaviour.
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_WAIT",
    "JITTER_FRACTION",
    "MAX_WAIT",
    "event_id_to_index",
    "format_go_duration",
    "parse_go_duration",
    "read_timeout_for_wait",
]

#: Consul's ``default_query_time``: the wait used when none (or ``<= 0``) is given.
DEFAULT_WAIT = 300.0
#: Consul's ``max_query_time``: larger waits are clamped to it.
MAX_WAIT = 600.0
#: The server adds a random jitter of up to ``wait / JITTER_FRACTION``.
JITTER_FRACTION = 16

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Parse a Go ``time.ParseDuration`` string into seconds.

    Accepts what Go accepts: an optional sign, then one or more ``<number><unit>`` components
    (``"300ms"``, ``"1.5h"``, ``"2m30s"``), or a bare ``"0"``. A unit-less number other than 0
    is an error, as in Go. Raises ``ValueError`` on anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string, got {type(text).__name__}")
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _COMPONENT.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Format seconds the way Consul's Go client sends a wait: whole milliseconds, ``"ms"``.

    A positive duration under 1 ms becomes ``"1ms"``, because Consul reads ``"0ms"`` as "use
    the (long) default wait". Zero and negative durations are sent as ``"0ms"``.
    """
    if seconds <= 0:
        return "0ms"
    ms = round(seconds * 1000)
    return f"{max(ms, 1)}ms"


def read_timeout_for_wait(wait: float, *, slack: float = 5.0) -> float:
    """The HTTP read timeout a blocking read with ``wait`` seconds needs.

    The server may hold the request for the (clamped) wait plus up to wait/16 of jitter; the
    timeout adds ``slack`` seconds on top for scheduling and the network.
    """
    effective = DEFAULT_WAIT if wait <= 0 else min(wait, MAX_WAIT)
    return effective * (1 + 1 / JITTER_FRACTION) + slack


def event_id_to_index(event_id: str) -> int:
    """Consul's pseudo-index of an event: XOR of the two halves of its UUID (``IDToIndex``)."""
    if len(event_id) != 36:
        raise ValueError(f"invalid event ID {event_id!r}")
    lower = event_id[0:8] + event_id[9:13] + event_id[14:18]
    upper = event_id[19:23] + event_id[24:36]
    return int(lower, 16) ^ int(upper, 16)
