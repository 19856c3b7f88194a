"""User events: ``/v1/event/fire/:name`` and ``/v1/event/list``.

Payloads are bytes both ways. The event list blocks on a pseudo-index derived from the newest
event's UUID, which is not monotonic (mode ``EVENT``: the server blocks while it is *equal*).

Note: the list is this agent's in-memory buffer (up to 256 events); its index means nothing on
another agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from consul_streams import _identity
from consul_streams._query import BlockingMode, Query, Request, Response
from consul_streams._rules import event_id_to_index
from consul_streams.endpoints._base import (
    Endpoint,
    b64decode,
    check_name,
    common_params,
    decode_json,
    expect_dict,
    expect_list,
    path_segment,
)
from consul_streams.exceptions import DecodeError, InvalidArgument
from consul_streams.typing import (
    Blocking,
    Consistency,
    Event,
    Filter,
    Payload,
    parse_filter,
    parse_payload,
)

__all__ = ["Events", "decode_event"]


def decode_event(raw: object, response: Response) -> Event:
    """An Event from Consul's JSON (``Payload`` base64 -> bytes, null -> ``b""``)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("ID"), str):
        raise DecodeError(
            f"expected an event object, got {raw!r:.80}",
            method=response.method,
            url=response.url,
            body=response.body,
        )
    event = dict(raw)
    event["Payload"] = b64decode(raw.get("Payload"), "Payload", response)
    return cast(Event, event)


def _event_index(event_id: object) -> int:
    try:
        if isinstance(event_id, str):
            return event_id_to_index(event_id)
    except ValueError:
        pass
    raise InvalidArgument(
        "watch", f"expected an index, a Meta, or an event whose 'ID' is a UUID; got {event_id!r}"
    )


def _decode_fired(response: Response) -> Event:
    return decode_event(expect_dict(decode_json(response), response), response)


def _decode_events(response: Response) -> list[Event]:
    return [decode_event(e, response) for e in expect_list(decode_json(response), response)]


class Events(Endpoint):
    """``/v1/event/``: fire events and read this agent's recent ones."""

    async def fire(
        self,
        name: str,
        payload: Payload = b"",
        *,
        node: Filter | None = None,
        service: Filter | None = None,
        tag: Filter | None = None,
        dc: str | None = None,
    ) -> Event:
        """Fire event ``name`` and return it as created (``LTime`` is 0 until gossiped).

        ``node``, ``service`` and ``tag`` are regular expressions (str or compiled pattern)
        restricting which agents handle the event; ``tag`` needs ``service``.
        """
        path = "/v1/event/fire/" + path_segment(name, "name")
        if name.startswith("_"):
            raise InvalidArgument("name", "must not begin with '_' (reserved by Consul)")
        body = parse_payload(payload, "payload")
        params = common_params(dc)
        for parameter, value in (("node", node), ("service", service), ("tag", tag)):
            if value is not None:
                params.append((parameter, parse_filter(value, parameter).pattern))
        if tag is not None and service is None:
            raise InvalidArgument("tag", "needs a service filter too")
        # Consul reads the body only when Content-Length > 0: send none for an empty payload.
        request = Request("PUT", path, tuple(params), body=body or None)
        return await self._write(request, _decode_fired)

    def items(
        self,
        name: str | None = None,
        *,
        watch: Blocking | None = None,
        consistency: Consistency | None = None,
        dc: str | None = None,
    ) -> Query[list[Event]]:
        """This agent's recent events, oldest first; only those called ``name`` if given.

        ``watch`` also accepts the last event seen (``{"ID": ...}``): its pseudo-index is
        derived from the UUID as Consul does.
        """
        if isinstance(watch, Mapping) and "Index" not in watch and "ID" in watch:
            watch = _event_index(watch["ID"])
        params = [] if name is None else [("name", check_name(name, "name"))]
        params += common_params(dc, consistency)
        request = Request("GET", "/v1/event/list", tuple(params))
        return self._query(
            request, _decode_events, watch=watch, mode=BlockingMode.EVENT, identity=_identity.EVENTS
        )
