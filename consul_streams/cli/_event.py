"""``consul-streams event``: ``consul event -name NAME [-node -service -tag] [PAYLOAD]``.

As ``command/event/event.go``: the filters are regular expressions checked before anything is
sent, ``-tag`` needs ``-service``, the agent is probed first, and the new event's ID is printed
as ``Event ID: <id>``. ``event fire NAME [PAYLOAD]`` (our earlier form) still works.
"""

from __future__ import annotations

import os
import re

from consul_streams.cli._common import add_http_flags, connect, out_line
from consul_streams.cli._goflags import FlagSet
from consul_streams.cli._parser import UsageError
from consul_streams.exceptions import HTTPError

__all__ = ["event_flags", "run_event"]


def event_flags() -> FlagSet:
    """``consul event``'s flags."""
    f = FlagSet("Usage: consul-streams event [options] [payload]")
    f.add("name", help="the event's name (required)")
    f.add("node", help="regular expression to filter the nodes that handle it")
    f.add("service", help="regular expression to filter on service instances")
    f.add("tag", help="regular expression to filter on service tags (needs -service)")
    add_http_flags(f)
    return f


async def run_event(argv: list[str]) -> int:
    """Fire the event and print ``Event ID: <id>``."""
    flags = event_flags()
    v, rest = flags.parse(argv)
    if not v["name"] and rest[:1] == ["fire"]:
        # `event fire NAME [PAYLOAD] [options]`: our earlier spelling.
        if len(rest) < 2:
            raise UsageError("Event name must be specified")
        v["name"] = rest[1]
        more, rest = flags.parse(rest[2:])
        if rest and rest[0] and not more["_set"]:
            more, tail = flags.parse(rest[1:])
            rest = [rest[0], *tail]
        for name in more["_set"]:
            v[name] = more[name]
    name = v["name"]
    if not name:
        raise UsageError("Event name must be specified")
    for what in ("node", "service", "tag"):
        if v[what]:
            try:
                re.compile(v[what])
            except re.error as exc:
                raise UsageError(f"Failed to compile {what} filter regexp: {exc}") from None
    if v["tag"] and not v["service"]:
        raise UsageError("Cannot provide tag filter without service filter.")
    if len(rest) > 1:
        raise UsageError("Too many command line arguments.")
    payload = os.fsencode(rest[0]) if rest else b""
    async with connect(v) as client:
        # As consul event does: fail fast when the agent is not there.
        await client.agent.self()
        try:
            event = await client.event.fire(
                name,
                payload,
                node=v["node"] or None,
                service=v["service"] or None,
                tag=v["tag"] or None,
            )
        except HTTPError as exc:
            raise UsageError(f"Error firing event: {exc}") from None
    out_line(f"Event ID: {event['ID']}")
    return 0
