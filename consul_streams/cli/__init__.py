"""``consul-streams``: a thin command line over the public API.

Sub-commands: ``dev`` (embedded agent), ``demo`` (a live watch against it, no Consul needed),
``watch`` (the ``consul watch`` types as JSON lines), ``kv get/put/delete``, ``event fire``.
Every failure is one line on stderr: status 2 for a wrong flag, 1 for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from consul_streams.cli._parser import UsageError, build_parser, print_error

__all__ = ["main"]


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "watch":
        from consul_streams.cli._watch import run_watch

        return await run_watch(args)
    if args.command == "kv":
        from consul_streams.cli._commands import run_kv

        return await run_kv(args)
    if args.command == "event":
        from consul_streams.cli._commands import run_event

        return await run_event(args)
    from consul_streams.cli._demo import run_demo

    return await run_demo(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    from consul_streams.exceptions import ConsulError, TransportError

    args: argparse.Namespace | None = None
    try:
        args = build_parser().parse_args(argv)
        if args.command == "dev":
            from consul_streams.cli._dev import run_dev_command

            return run_dev_command(args)
        return asyncio.run(_dispatch(args))
    except UsageError as exc:
        print_error(str(exc))
        return 2
    except TransportError as exc:
        from consul_streams.cli._common import resolve_address

        where = resolve_address(args) if args is not None and "http_addr" in args else "?"
        print_error(f"cannot reach the Consul agent at {where}: {exc}")
        return 1
    except (ConsulError, OSError) as exc:
        print_error(str(exc) or type(exc).__name__)
        return 1
    except KeyboardInterrupt:
        return 130
