"""``consul-streams``: a thin command line over the public API.

``watch``, ``kv get|put|delete|export|import`` and ``event`` accept what HashiCorp's ``consul``
accepts (Go-style flags, ``command/watch``, ``command/kv/*``, ``command/event``) and print what
it prints; every failure of those is one line on stderr and status 1, as in consul. ``dev``
(embedded agent) and ``demo`` (a live watch against it) are ours: a wrong flag there is status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from consul_streams.cli._parser import CONSUL_COMMANDS, UsageError, build_parser, print_error

__all__ = ["main"]


async def _consul_command(command: str, argv: list[str]) -> int:
    if command == "watch":
        from consul_streams.cli._watch import run_watch

        return await run_watch(argv)
    if command == "kv":
        from consul_streams.cli._kv import run_kv

        return await run_kv(argv)
    from consul_streams.cli._event import run_event

    return await run_event(argv)


def _help(command: str, argv: list[str]) -> str:
    if command == "watch":
        from consul_streams.cli._watch import watch_flags

        return watch_flags().help_text()
    if command == "kv":
        from consul_streams.cli._kv import KV_COMMANDS, kv_flags

        if argv and argv[0] in KV_COMMANDS:
            return kv_flags(argv[0]).help_text()
        return "Usage: consul-streams kv <get|put|delete|export|import> [options] [args]"
    from consul_streams.cli._event import event_flags

    return event_flags().help_text()


class _StderrLog(logging.Handler):
    """The library's warnings on stderr, one line each (``consul watch`` logs each failure)."""

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("watch %r stopped"):
            return  # the error that stopped the watch is the command's own one-line report
        try:
            text = " ".join(self.format(record).split())
            sys.stderr.write(f"consul-streams: {record.levelname.lower()}: {text}\n")
            sys.stderr.flush()
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)


def _run_consul_command(command: str, argv: list[str]) -> int:
    from consul_streams.cli._goflags import FlagError, HelpRequested

    logger = logging.getLogger("consul_streams")
    handler = _StderrLog(logging.WARNING)
    logger.addHandler(handler)
    level = logger.level
    if level == logging.NOTSET or level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        return asyncio.run(_consul_command(command, argv))
    except HelpRequested:
        print(_help(command, argv))
        return 0
    except FlagError as exc:
        print_error(str(exc))
        return 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    from consul_streams.exceptions import ConsulError, TransportError

    args: argparse.Namespace | None = None
    argv = list(sys.argv[1:] if argv is None else argv)
    consul = bool(argv) and argv[0] in CONSUL_COMMANDS
    try:
        if consul:
            return _run_consul_command(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        if args.command == "dev":
            from consul_streams.cli._dev import run_dev_command

            return run_dev_command(args)
        from consul_streams.cli._demo import run_demo

        return asyncio.run(run_demo(args))
    except UsageError as exc:
        print_error(str(exc))
        return 1 if consul else 2
    except TransportError as exc:
        from consul_streams.cli._common import resolve_address

        where = resolve_address({"http_addr": _flag_value(argv, "http-addr")})
        print_error(f"Error connecting to Consul agent at {where}: {exc}")
        return 1
    except (ConsulError, OSError, UnicodeError) as exc:
        # consul: "Error querying Consul agent: ..." and status 1
        what = str(exc) or type(exc).__name__
        if isinstance(exc, ConsulError):
            from consul_streams._policy import hint

            fix = hint(exc)
            print_error(f"{what} ({fix})" if fix else what)
        else:
            print_error(f"{type(exc).__name__}: {what}")
        return 1
    except BrokenPipeError:
        # stdout closed early (`| head`): end quietly, as a Go program killed by SIGPIPE does.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130


def _flag_value(argv: Sequence[str], name: str) -> str | None:
    """The value of ``-name``/``--name`` in ``argv`` (for an error message only)."""
    for i, arg in enumerate(argv):
        for spelling in (f"-{name}", f"--{name}"):
            if arg == spelling and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(spelling + "="):
                return arg[len(spelling) + 1 :]
    return None
