"""The argument parser of ``consul-streams``: sub-commands and the consul CLI's common flags."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from consul_streams.cli._errors import UsageError

__all__ = ["WATCH_TYPES", "UsageError", "build_parser"]

WATCH_TYPES = ("key", "keyprefix", "services", "nodes", "service", "checks", "event")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are raised (one line, no usage dump) instead of printed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # -stale/-state/-service and friends: no guessing between long flags.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _add_http_flags(p: argparse.ArgumentParser) -> None:
    # The consul CLI spells its flags with one dash; accept both so commands copy across.
    g = p.add_argument_group("agent connection (flags win over CONSUL_* environment variables)")
    g.add_argument(
        "-http-addr",
        "--http-addr",
        dest="http_addr",
        metavar="ADDR",
        help="agent address (env CONSUL_HTTP_ADDR; default 127.0.0.1:8500)",
    )
    g.add_argument(
        "-token",
        "--token",
        dest="token",
        metavar="TOKEN",
        help="ACL token (env CONSUL_HTTP_TOKEN); prefer -token-file",
    )
    g.add_argument(
        "-token-file",
        "--token-file",
        dest="token_file",
        metavar="PATH",
        help="file holding the ACL token (env CONSUL_HTTP_TOKEN_FILE)",
    )
    g.add_argument(
        "-datacenter",
        "--datacenter",
        dest="datacenter",
        metavar="DC",
        help="datacenter to query (default: the agent's)",
    )


def _add_watch_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("type", choices=WATCH_TYPES, help="what to watch, as consul watch -type")
    p.add_argument("-key", "--key", dest="key", help="key (type key)")
    p.add_argument("-prefix", "--prefix", dest="prefix", help="key prefix (type keyprefix)")
    p.add_argument(
        "-service", "--service", dest="service", help="service name (type service, checks)"
    )
    p.add_argument(
        "-tag",
        "--tag",
        dest="tag",
        action="append",
        default=[],
        help="service tag (type service; repeatable)",
    )
    p.add_argument(
        "-passing",
        "--passing",
        "-passingonly",
        "--passingonly",
        dest="passing",
        action="store_true",
        help="only instances with passing checks (type service)",
    )
    p.add_argument(
        "-state",
        "--state",
        dest="state",
        choices=("any", "passing", "warning", "critical"),
        help="check state (checks)",
    )
    p.add_argument("-name", "--name", dest="name", help="event name (type event)")
    p.add_argument("-filter", "--filter", dest="filter", help="Consul filter expression")
    p.add_argument(
        "--match", metavar="REGEX", help="keep only items whose key/name matches REGEX (search)"
    )
    p.add_argument(
        "--debounce",
        metavar="DURATION",
        help="wait for this long without changes before showing one (e.g. 200ms)",
    )
    p.add_argument(
        "--max-wait",
        dest="max_wait",
        metavar="DURATION",
        help="with --debounce: show a change at most this long after it started",
    )
    p.add_argument(
        "--wait",
        metavar="DURATION",
        default="5m",
        help="blocking-query wait per request, above 0s and at most 10m (default 5m)",
    )
    p.add_argument(
        "-stale",
        "--stale",
        dest="stale",
        action="store_true",
        help="allow any server to answer (stale reads)",
    )
    p.add_argument(
        "--diff",
        action="store_true",
        help="print what changed (added/removed/changed) instead of the whole result",
    )
    p.add_argument(
        "--format",
        choices=("json", "pretty"),
        default="json",
        help="json: one JSON document per line (default); pretty: indented",
    )
    p.add_argument("--once", action="store_true", help="print the first result and exit")
    p.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="exit after N results (--once is --count 1)",
    )
    p.add_argument(
        "--exec",
        dest="exec_cmd",
        metavar="CMD",
        help="run CMD (shell) on each change: JSON on stdin, CONSUL_INDEX in env",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``consul-streams`` parser."""
    parser = _Parser(
        prog="consul-streams",
        description="Watch and stream HashiCorp Consul from the terminal.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    from consul_streams.cli._dev import add_dev_parser

    add_dev_parser(sub)

    demo = sub.add_parser("demo", help="a live watch against the embedded dev agent")
    demo.add_argument(
        "--duration", type=float, default=5.0, help="seconds to run before exiting (default 5)"
    )
    demo.add_argument(
        "--debounce",
        default="300ms",
        metavar="DURATION",
        help="quiet period before a burst is shown (default 300ms)",
    )
    demo.add_argument(
        "--match", default=None, metavar="REGEX", help="only show keys matching REGEX"
    )

    watch = sub.add_parser("watch", help="watch a view of Consul and print each change")
    _add_watch_flags(watch)
    _add_http_flags(watch)

    kv = sub.add_parser("kv", help="read and write KV entries")
    kv_sub = kv.add_subparsers(dest="kv_command", required=True, parser_class=_Parser)
    get = kv_sub.add_parser("get", help="print a key's value (or a prefix's with --recurse)")
    get.add_argument("key")
    get.add_argument("--recurse", action="store_true", help="every key under the prefix")
    get.add_argument("--format", choices=("text", "json"), default="text")
    _add_http_flags(get)
    put = kv_sub.add_parser("put", help="set a key (value '-' reads stdin)")
    put.add_argument("key")
    put.add_argument("value", nargs="?", default="")
    put.add_argument("--cas", type=int, default=None, help="only if ModifyIndex equals this")
    put.add_argument("--flags", type=int, default=None)
    _add_http_flags(put)
    delete = kv_sub.add_parser("delete", help="delete a key (or a prefix with --recurse)")
    delete.add_argument("key")
    delete.add_argument("--recurse", action="store_true")
    _add_http_flags(delete)

    event = sub.add_parser("event", help="user events")
    ev_sub = event.add_subparsers(dest="event_command", required=True, parser_class=_Parser)
    fire = ev_sub.add_parser("fire", help="fire a user event")
    fire.add_argument("name")
    fire.add_argument("payload", nargs="?", default="")
    _add_http_flags(fire)
    return parser


def print_error(message: str) -> None:
    """One line on stderr, the way every failure of the command is reported."""
    first = " ".join(message.split())
    print(f"consul-streams: error: {first}", file=sys.stderr)
