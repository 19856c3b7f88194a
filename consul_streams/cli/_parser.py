"""The argument parser of ``consul-streams``: sub-commands and the consul CLI's common flags."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from consul_streams.cli._errors import UsageError

__all__ = ["CONSUL_COMMANDS", "UsageError", "build_parser", "print_error"]

#: The sub-commands that take consul's flags (parsed Go-style by ``_goflags``).
CONSUL_COMMANDS = ("watch", "kv", "event")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are raised (one line, no usage dump) instead of printed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # -stale/-state/-service and friends: no guessing between long flags.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The full ``consul-streams`` parser."""
    parser = _Parser(
        prog="consul-streams",
        description="Watch and stream HashiCorp Consul from the terminal.",
        epilog=(
            "consul-compatible commands (the flags and output of HashiCorp's consul): "
            "watch, kv get|put|delete|export|import, event. "
            "Run 'consul-streams watch -h' for their flags."
        ),
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

    return parser


def print_error(message: str) -> None:
    """One line on stderr, the way every failure of the command is reported."""
    first = " ".join(message.split())
    # A non-UTF-8 argument echoed back must not turn the report into a traceback.
    line = f"consul-streams: error: {first}\n".encode(errors="backslashreplace")
    sys.stderr.flush()
    try:
        sys.stderr.buffer.write(line)
    except AttributeError:  # a text-only stream (pytest's capsys)
        sys.stderr.write(line.decode())
    sys.stderr.flush()
