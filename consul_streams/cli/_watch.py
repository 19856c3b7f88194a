"""``consul-streams watch``: the ``consul watch`` types as a stream of JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from consul_streams._rules import parse_go_duration
from consul_streams.cli._common import connect, render
from consul_streams.cli._parser import UsageError, print_error

if TYPE_CHECKING:
    from consul_streams._client import Consul
    from consul_streams._query import Query

__all__ = ["check_watch_args", "item_key", "run_watch", "select", "view_diff"]


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
    args.wait = _duration(args.wait, "--wait")


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


#: How an item of each list-valued type is named (for --match) and identified (for --diff).
_ITEM_NAME: dict[str, Callable[[Any], str]] = {
    "keyprefix": lambda e: str(e["Key"]),
    "nodes": lambda n: str(n["Node"]),
    "service": lambda s: str(s["Service"]["ID"]),
    "checks": lambda c: str(c["CheckID"]),
    "event": lambda e: str(e["Name"]),
}
_ITEM_ID: dict[str, Callable[[Any], Hashable]] = {
    "keyprefix": lambda e: str(e["Key"]),
    "nodes": lambda n: str(n["Node"]),
    "service": lambda s: (str(s["Node"]["Node"]), str(s["Service"]["ID"])),
    "checks": lambda c: (str(c["Node"]), str(c["CheckID"])),
    "event": lambda e: str(e["ID"]),
}


def item_key(kind: str, item: Any) -> Hashable:
    """The identity of one item of a list-valued result (used by --diff)."""
    return _ITEM_ID[kind](item)


def select(kind: str, value: Any, match: re.Pattern[str] | None) -> Any:
    """The part of a result that --match keeps (the whole result without --match)."""
    if match is None or value is None:
        return value
    if kind == "services":
        return {name: tags for name, tags in value.items() if match.search(name)}
    if kind == "key":
        return value if match.search(str(value["Key"])) else None
    name = _ITEM_NAME[kind]
    return [item for item in value if match.search(name(item))]


def view_diff(kind: str, old: Any, new: Any) -> dict[str, Any]:
    """``{"added", "removed", "changed"}`` between two results of the same watch type."""
    if kind == "key":
        return {"old": old, "new": new}
    if kind == "services":
        before, after = dict(old or {}), dict(new or {})
    else:
        before = {item_key(kind, i): i for i in old or ()}
        after = {item_key(kind, i): i for i in new or ()}
    return {
        "added": [v for k, v in after.items() if k not in before],
        "removed": [v for k, v in before.items() if k not in after]
        if kind != "services"
        else sorted(k for k in before if k not in after),
        "changed": [v for k, v in after.items() if k in before and before[k] != v],
    }


async def _probe(client: Consul) -> None:
    # As consul watch does: fail fast, before the loop, when the agent is not there.
    await client.status.leader()


def changes(query: Query[Any], args: argparse.Namespace) -> Any:
    """The watch stream (an aiostream Stream of ``(value, meta)``), debounced when asked."""
    from consul_streams.recipes.config import BURST_RATE_LIMIT
    from consul_streams.watch import watch

    # With --debounce a burst must arrive promptly, or a rate-limit pause splits it in two.
    wait = args.wait if args.wait else "5m"
    stream: Any = (
        watch(query, wait=wait, rate_limit=BURST_RATE_LIMIT)
        if args.debounce
        else watch(query, wait=wait)
    )
    if args.debounce:
        from consul_streams import ops

        stream = stream | ops.debounce.pipe(args.debounce, max_wait=args.max_wait)
    return stream


async def _run_handler(cmd: str, payload: str, index: int) -> int:
    env = dict(os.environ, CONSUL_INDEX=str(index))
    proc = await asyncio.create_subprocess_shell(cmd, stdin=asyncio.subprocess.PIPE, env=env)
    await proc.communicate(payload.encode() + b"\n")
    return proc.returncode or 0


async def run_watch(args: argparse.Namespace) -> int:
    """Print (or hand to --exec) each change of the watched view until interrupted."""
    check_watch_args(args)
    async with connect(args) as client:
        await _probe(client)
        query = build_query(client, args)
        first = True
        shown = 0
        previous: Any = None
        async with changes(query, args).stream() as rounds:
            async for value, meta in rounds:
                view = select(args.type, value, args.match)
                if not first and view == previous:
                    continue  # a change outside --match, or an index bump with equal data
                out = view_diff(args.type, previous, view) if args.diff and not first else view
                first, previous = False, view
                text = render(out, args.format)
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
