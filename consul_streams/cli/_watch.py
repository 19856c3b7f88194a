"""``consul-streams watch``: ``consul watch``, with its flags, handler and output.

As ``consul watch`` (``command/watch/watch.go``): with no handler the first result is printed
as indented JSON and the command exits 0; with a handler (the trailing arguments, run by
``$SHELL -c`` unless ``-shell=false``) every change is piped to it as one JSON line with
``CONSUL_INDEX`` in its environment, a failing handler ends the watch with status 1, and
SIGINT/SIGTERM/SIGHUP are forwarded to a running handler, which the command waits for.
Our additions: ``-follow`` (every change as a JSON line), ``-match``, ``-debounce``,
``-max-wait``, ``-diff``, ``-wait``, ``-count``, ``-once``, ``-exec`` and
``-format decoded|pretty``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from consul_streams._parse import parse_wait
from consul_streams._rules import parse_go_duration
from consul_streams.cli._common import add_http_flags, connect, jsonable, out_line, render
from consul_streams.cli._consul_json import dump_consul, to_consul
from consul_streams.cli._goflags import FlagSet
from consul_streams.cli._parser import UsageError, print_error
from consul_streams.exceptions import InvalidArgument

if TYPE_CHECKING:
    from consul_streams._client import Consul
    from consul_streams._query import Query

__all__ = ["WATCH_TYPES", "build_query", "changes", "check_watch_args", "run_watch", "watch_flags"]

WATCH_TYPES = ("key", "keyprefix", "services", "nodes", "service", "checks", "event")

#: The parameters each type accepts (api/watch/funcs.go); others are "Invalid parameters".
_TYPE_PARAMS: Mapping[str, frozenset[str]] = {
    "key": frozenset({"key"}),
    "keyprefix": frozenset({"prefix"}),
    "services": frozenset({"filter"}),
    "nodes": frozenset({"filter"}),
    "service": frozenset({"service", "tag", "passingonly", "filter"}),
    "checks": frozenset({"service", "state", "tag", "filter"}),
    "event": frozenset({"name"}),
}
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def watch_flags() -> FlagSet:
    """``consul watch``'s flags, then ours (marked as additions in ``-h``)."""
    f = FlagSet("Usage: consul-streams watch [options] [child...]")
    f.add("type", help="key, keyprefix, services, nodes, service, checks or event")
    f.add("key", help="the key to watch (type key)")
    f.add("prefix", help="the key prefix to watch (type keyprefix)")
    f.add("service", help="the service to watch (type service; optional for checks)")
    f.add("tag", "strings", help="service tag to filter on (types service, checks; repeatable)")
    f.add("passingonly", "optbool", help="only instances passing all checks (type service)")
    f.add("state", help="check state to watch (type checks)")
    f.add("name", help="event name to watch (type event)")
    f.add("shell", "bool", True, help="run the handler with $SHELL -c (default true)")
    add_http_flags(f)
    f.add("passing", "optbool", dest="passingonly", extra=True, help="-passingonly")
    f.add("filter", help="filter expression for the request (services, nodes, service, checks)")
    f.add("follow", "bool", extra=True, help="print every change as one JSON line, not just one")
    f.add("count", "uint", extra=True, help="exit after N results (implies -follow)")
    f.add("once", "bool", extra=True, help="print the first result and exit (the default)")
    f.add("match", extra=True, help="keep only items whose key/name matches this regex")
    f.add("debounce", extra=True, help="show a change after this long without another")
    f.add("max-wait", extra=True, help="with -debounce: show a change at most this late")
    f.add("wait", default="5m", extra=True, help="blocking wait per request (default 5m)")
    f.add("diff", "bool", extra=True, help="print what changed (added/removed/changed)")
    f.add("format", default="consul", extra=True, help="consul (default), decoded or pretty")
    f.add("exec", extra=True, dest="exec_cmd", help="handler command line (as trailing args)")
    return f


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
    """``-wait``: a blocking wait Consul honours, in (0, 10m] (the rule of ``watch(wait=)``)."""
    _duration(text, "-wait")  # the CLI's own message for text that is not a duration
    try:
        return parse_wait(text, "-wait")
    except InvalidArgument:
        raise UsageError(
            f"-wait: expected a duration above 0s and at most 10m, got {text!r}"
        ) from None


def check_watch_args(v: dict[str, Any], rest: list[str]) -> list[str]:
    """The per-type rules of ``consul watch`` (api/watch/funcs.go); returns the handler argv."""
    t = v["type"]
    if not t:
        raise UsageError("Watch type must be specified")
    if t.startswith(("connect_", "agent_")):
        raise UsageError(f"Type {t} is not supported in the CLI tool")
    if t not in WATCH_TYPES:
        raise UsageError(f"Unsupported watch type: {t}")
    given = {name for name in ("key", "prefix", "service", "state", "name", "filter") if v[name]}
    given |= {"tag"} if v["tag"] else set()
    given |= {"passingonly"} if v["passingonly"] is not None else set()
    if t == "keyprefix" and "prefix" in v["_set"]:
        given.add("prefix")
    invalid = sorted(given - _TYPE_PARAMS[t])
    if invalid:
        raise UsageError(f"Invalid parameters: [{' '.join(invalid)}]")
    if t == "key" and not v["key"]:
        raise UsageError("Must specify a single key to watch")
    if t == "keyprefix" and "prefix" not in v["_set"]:
        raise UsageError("Must specify a single prefix to watch")
    if t == "service" and not v["service"]:
        raise UsageError("Must specify a single service to watch")
    if t == "checks" and v["service"] and v["state"]:
        raise UsageError("Cannot specify service and state")
    if v["state"] and v["state"] not in ("any", "passing", "warning", "critical"):
        raise UsageError(f"-state: expected any, passing, warning or critical, got {v['state']!r}")
    if v["tag"] and any(not tag for tag in v["tag"]):
        raise UsageError("-tag: must not be empty")
    if v["format"] not in ("consul", "decoded", "pretty", "json"):
        raise UsageError(f"-format: expected consul, decoded or pretty, got {v['format']!r}")
    if v["max_wait"] and not v["debounce"]:
        raise UsageError("-max-wait: only valid together with -debounce")
    if "count" in v["_set"] and v["count"] < 1:
        raise UsageError(f"-count: expected a number >= 1, got {v['count']}")
    if v["once"]:
        v["count"] = 1
    if v["match"] is not None:
        try:
            v["match"] = re.compile(v["match"])
        except re.error as exc:
            raise UsageError(f"-match: invalid regular expression: {exc}") from None
    v["debounce"] = _duration(v["debounce"], "-debounce")
    v["max_wait"] = _duration(v["max_wait"], "-max-wait")
    v["wait"] = _wait(v["wait"])
    if v["exec_cmd"] is not None:
        if rest:
            raise UsageError("-exec: give the handler either as -exec or as trailing arguments")
        rest = [v["exec_cmd"]]
    return rest


def build_query(client: Consul, v: Mapping[str, Any]) -> Query[Any]:
    """The read behind each watch type (api/watch/funcs.go)."""
    extra: dict[str, Any] = {}
    if v["filter"]:
        extra["filter"] = v["filter"]
    t = v["type"]
    if t == "key":
        return client.kv.get(v["key"])
    if t == "keyprefix":
        return client.kv.items(v["prefix"] or "")
    if t == "services":
        return client.catalog.services(**extra)
    if t == "nodes":
        return client.catalog.nodes(**extra)
    if t == "service":
        tags = list(v["tag"])
        tag = tags if len(tags) > 1 else (tags[0] if tags else None)
        passing = bool(v["passingonly"])
        return client.health.service(v["service"], passing=passing, tag=tag, **extra)
    if t == "checks":
        if v["tag"]:
            # health.StateTags/ChecksTags: every tag must be among the check's ServiceTags.
            wanted = " and ".join(f"{json.dumps(tag)} in ServiceTags" for tag in v["tag"])
            extra["filter"] = f"({extra['filter']}) and {wanted}" if "filter" in extra else wanted
        if v["service"]:
            return client.health.checks(v["service"], **extra)
        return client.health.state(v["state"] or "any", **extra)
    return client.event.items(name=v["name"] or None)


#: Parameters of the endpoint methods that are spelled as a watch flag of the same name.
_FLAG_PARAMETERS = frozenset({"key", "prefix", "service", "tag", "state", "name", "filter"})


def _as_flag(exc: InvalidArgument) -> str:
    """The error in terms of the command's flags (``-key: ...``) where one maps."""
    return f"-{exc}" if exc.parameter in _FLAG_PARAMETERS else str(exc)


def changes(query: Query[Any], v: Mapping[str, Any]) -> Any:
    """The watch as an aiostream Stream of ``(value, meta)``: matched, debounced, de-duplicated
    and diffed as the flags ask."""
    from consul_streams import ops
    from consul_streams.recipes.config import BURST_RATE_LIMIT
    from consul_streams.watch import watch

    # The library's error policy: retriable failures are retried (each logged at WARNING,
    # which the command shows on stderr), the others end the watch and the command (status 1).
    options: dict[str, Any] = {"wait": v["wait"]}
    if v["type"] == "event":
        options["events"] = "all"  # consul's first run hands over the buffered events
    if v["debounce"]:
        # A burst must reach the debounce promptly, or a rate-limit pause splits it in two.
        options["rate_limit"] = BURST_RATE_LIMIT
    stream: Any = watch(query, **options)
    if v["match"] is not None:
        stream = stream | ops.match(v["match"])
    if v["debounce"]:
        stream = stream | ops.debounce(v["debounce"], max_wait=v["max_wait"])
        stream = stream | ops.distinct()  # a burst that ended where it began shows nothing
    if v["diff"]:
        stream = stream | ops.diff()
    return stream


def _shape(value: Any, v: Mapping[str, Any]) -> Any:
    convert = to_consul if v["format"] == "consul" else jsonable
    if v["diff"]:
        return {
            "added": convert(list(value.added)),
            "removed": convert(list(value.removed)),
            "changed": [{"old": convert(o), "new": convert(n)} for o, n in value.changed],
        }
    return convert(value)


def _text(value: Any, v: Mapping[str, Any], *, lines: bool) -> str:
    """consul's JSON (Go's json.Marshal/MarshalIndent), or our decoded forms."""
    shaped = _shape(value, v)
    if v["format"] == "consul":
        return dump_consul(shaped, indent=None if lines else "    ")
    return render(shaped, "pretty" if v["format"] == "pretty" or not lines else "json")


class _Handler:
    """Runs the handler per change, forwarding the signals the command receives."""

    def __init__(self, argv: list[str], shell: bool) -> None:
        self.argv = argv
        self.shell = shell
        self.proc: asyncio.subprocess.Process | None = None
        self.running = False  # from just before the spawn until the handler is reaped
        self.pending: int | None = None  # a signal that came while the spawn was under way
        self.stopping = False

    async def run(self, payload: str, index: int) -> int:
        env = dict(os.environ, CONSUL_INDEX=str(index))
        if self.shell:
            # agent.ExecScript: $SHELL (or /bin/sh) -c "the args joined by spaces"
            shell = os.environ.get("SHELL") or "/bin/sh"
            argv = [shell, "-c", " ".join(self.argv)]
        else:
            argv = self.argv
        self.running = True
        try:
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, env=env
                )
            except OSError as exc:
                raise UsageError(f"Error starting handler: {exc}") from None
            if self.pending is not None:
                # The child may run (and a signal arrive) before the spawn returns here.
                self._forward(self.pending)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self.proc.communicate(payload.encode() + b"\n")
            return await self.proc.wait()
        finally:
            self.proc, self.running, self.pending = None, False, None

    def _forward(self, signum: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    def signal(self, signum: int, stop: asyncio.Event) -> None:
        self.stopping = True
        if not self.running:
            stop.set()
        elif self.proc is None:
            self.pending = signum
        else:
            self._forward(signum)


async def _consume(stream: Any, v: Mapping[str, Any], handler: _Handler | None) -> int:
    follow = v["follow"] or v["count"] is not None or handler is not None
    shown = 0
    async with stream.stream() as rounds:
        async for value, meta in rounds:
            if handler is not None:
                status = await handler.run(_text(value, v, lines=True), meta.index)
                if status != 0:
                    # exec.ExitError's text: "exit status N" ("signal: ..." when killed)
                    what = f"exit status {status}" if status > 0 else f"signal {-status}"
                    print_error(f"Error executing handler: {what}")
                    return 0 if handler.stopping else 1
                if handler.stopping:
                    return 0
            else:
                out_line(_text(value, v, lines=follow))
            shown += 1
            if not follow or (v["count"] is not None and shown >= v["count"]):
                return 0
    return 0


async def run_watch(argv: list[str]) -> int:
    """``consul-streams watch [options] [child...]``; the exit status of ``consul watch``."""
    flags = watch_flags()
    v, rest = flags.parse(argv)
    if not v["type"] and rest and not rest[0].startswith("-"):
        # `watch TYPE [options]`: our positional form; the flags may follow the type.
        v["type"] = rest[0]
        more, rest = flags.parse(rest[1:])
        for name in more["_set"]:
            v[name] = more[name]
        v["_set"] |= more["_set"]
    handler_argv = check_watch_args(v, rest)
    handler = _Handler(handler_argv, v["shell"]) if handler_argv else None
    async with connect(v) as client:
        # Every argument is checked (the query and the watch are built) before the first
        # request: a bad flag must not reach the agent.
        try:
            stream = changes(build_query(client, v), v)
        except InvalidArgument as exc:
            raise UsageError(_as_flag(exc)) from None
        # As consul watch does: fail fast, before the loop, when the agent is not there.
        await client.status.leader()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for signum in _FORWARDED:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                if handler is not None:
                    loop.add_signal_handler(signum, handler.signal, signum, stop)
                else:
                    loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
        try:
            work = asyncio.ensure_future(_consume(stream, v, handler))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not work.done():
                # A signal and no handler running: consul's shutdown path exits 0.
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                return 0
            return work.result()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
