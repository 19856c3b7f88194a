"""``consul-streams watch``: the ``consul watch`` types as a stream of JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import TYPE_CHECKING, Any

from consul_streams._parse import parse_wait
from consul_streams._rules import parse_go_duration
from consul_streams.cli._common import connect, render
from consul_streams.cli._parser import UsageError, print_error
from consul_streams.exceptions import InvalidArgument

if TYPE_CHECKING:
    from consul_streams._client import Consul
    from consul_streams._query import Query

__all__ = ["build_query", "changes", "check_watch_args", "run_watch"]


def _duration(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        msg = f"{flag}: expected a duration like 250ms, 10s or 5m, got {text!r}"
        raise UsageError(msg) from None
    if seconds < 0:
        raise UsageError(f"{flag}: must not be negative, got {text!r}")
    return seconds


def _wait(text: str) -> float:
    """``--wait``: a blocking wait Consul honours, in (0, 10m] (the rule of ``watch(wait=)``)."""
    _duration(text, "--wait")  # the CLI's own message for text that is not a duration
    try:
        return parse_wait(text, "--wait")
    except InvalidArgument:
        raise UsageError(
            f"--wait: expected a duration above 0s and at most 10m, got {text!r}"
        ) from None


def check_watch_args(args: argparse.Namespace) -> None:
    """The per-type rules of ``consul watch`` (required and exclusive parameters)."""
    t = args.type
    if t == "key" and not args.key:
        raise UsageError("-key: must specify a single key to watch (type key)")
    if t == "keyprefix" and args.prefix is None:
        raise UsageError("-prefix: must specify a key prefix to watch (type keyprefix)")
    if t == "service" and not args.service:
        raise UsageError("-service: must specify a service to watch (type service)")
    if t == "checks" and args.service and args.state:
        raise UsageError("-service/-state: cannot specify both service and state (type checks)")
    if args.filter and t in ("key", "keyprefix", "event"):
        raise UsageError(f"-filter: not valid with type {t} (services, nodes, service, checks)")
    if args.tag and t != "service":
        raise UsageError(f"-tag: only valid with type service, not {t}")
    if args.max_wait and not args.debounce:
        raise UsageError("--max-wait: only valid together with --debounce")
    if args.count is not None and args.count < 1:
        raise UsageError(f"--count: expected a number >= 1, got {args.count}")
    if args.once:
        args.count = 1
    if args.match is not None:
        try:
            args.match = re.compile(args.match)
        except re.error as exc:
            raise UsageError(f"--match: invalid regular expression: {exc}") from None
    args.debounce = _duration(args.debounce, "--debounce")
    args.max_wait = _duration(args.max_wait, "--max-wait")
    args.wait = _wait(args.wait)


def build_query(client: Consul, args: argparse.Namespace) -> Query[Any]:
    """The read behind each watch type."""
    extra: dict[str, Any] = {"consistency": "stale"} if args.stale else {}
    if args.filter:
        extra["filter"] = args.filter
    t = args.type
    if t == "key":
        return client.kv.get(args.key, **extra)
    if t == "keyprefix":
        return client.kv.items(args.prefix, **extra)
    if t == "services":
        return client.catalog.services(**extra)
    if t == "nodes":
        return client.catalog.nodes(**extra)
    if t == "service":
        tag = args.tag if len(args.tag) > 1 else (args.tag[0] if args.tag else None)
        return client.health.service(args.service, passing=args.passing, tag=tag, **extra)
    if t == "checks":
        if args.service:
            return client.health.checks(args.service, **extra)
        return client.health.state(args.state or "any", **extra)
    return client.event.items(name=args.name, **extra)


#: Parameters of the endpoint methods that are spelled as a watch flag of the same name.
_FLAG_PARAMETERS = frozenset({"key", "prefix", "service", "tag", "state", "name", "filter"})


def _as_flag(exc: InvalidArgument) -> str:
    """The error in terms of the command's flags (``-key: ...``) where one maps."""
    return f"-{exc}" if exc.parameter in _FLAG_PARAMETERS else str(exc)


async def _probe(client: Consul) -> None:
    # As consul watch does: fail fast, before the loop, when the agent is not there.
    await client.status.leader()


def changes(query: Query[Any], args: argparse.Namespace) -> Any:
    """The watch as an aiostream Stream of ``(value, meta)``: matched, debounced, de-duplicated
    and diffed as the flags ask."""
    from consul_streams import ops
    from consul_streams.recipes.config import BURST_RATE_LIMIT
    from consul_streams.watch import watch

    if args.debounce:
        # A burst must reach the debounce promptly, or a rate-limit pause splits it in two.
        stream: Any = watch(query, wait=args.wait, rate_limit=BURST_RATE_LIMIT)
    else:
        stream = watch(query, wait=args.wait)
    if args.match is not None:
        stream = stream | ops.match(args.match)
    if args.debounce:
        stream = stream | ops.debounce(args.debounce, max_wait=args.max_wait)
        stream = stream | ops.distinct()  # a burst that ended where it began shows nothing
    if args.diff:
        stream = stream | ops.diff()
    return stream


def _jsonable_diff(diff: Any) -> dict[str, Any]:
    return {
        "added": diff.added,
        "removed": diff.removed,
        "changed": [{"old": old, "new": new} for old, new in diff.changed],
    }


async def _run_handler(cmd: str, payload: str, index: int) -> int:
    env = dict(os.environ, CONSUL_INDEX=str(index))
    proc = await asyncio.create_subprocess_shell(cmd, stdin=asyncio.subprocess.PIPE, env=env)
    await proc.communicate(payload.encode() + b"\n")
    return proc.returncode or 0


async def run_watch(args: argparse.Namespace) -> int:
    """Print (or hand to --exec) each change of the watched view until interrupted."""
    check_watch_args(args)
    async with connect(args) as client:
        # Every argument is checked (the query and the watch are built) before the first
        # request: a bad flag must not reach the agent.
        try:
            stream = changes(build_query(client, args), args)
        except InvalidArgument as exc:
            raise UsageError(_as_flag(exc)) from None
        await _probe(client)
        shown = 0
        async with stream.stream() as rounds:
            async for value, meta in rounds:
                text = render(_jsonable_diff(value) if args.diff else value, args.format)
                if args.exec_cmd:
                    status = await _run_handler(args.exec_cmd, text, meta.index)
                    if status != 0:
                        print_error(f"handler exited with status {status}")
                        return 1
                else:
                    print(text, flush=True)
                shown += 1
                if args.count is not None and shown >= args.count:
                    return 0
    return 0
