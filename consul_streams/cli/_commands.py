"""``consul-streams dev``: the embedded dev agent until interrupted."""

from __future__ import annotations

import argparse
import sys

from consul_streams.cli._parser import UsageError

__all__ = ["run_dev_command"]


def run_dev_command(args: argparse.Namespace) -> int:
    """Serve the embedded dev agent until interrupted."""
    from consul_streams.testing._dev_agent import is_ip_address, is_loopback

    if not is_ip_address(args.bind):
        raise UsageError(f"--bind: expected an IP address such as 127.0.0.1, got {args.bind!r}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: expected 0-65535, got {args.port}")
    if not is_loopback(args.bind):
        print(
            f"consul-streams: warning: the dev agent on {args.bind} is reachable from other "
            "machines and has no ACLs",
            file=sys.stderr,
        )
    from consul_streams.testing import run_dev

    run_dev(args.bind, args.port)  # prints its address; returns on Ctrl-C
    return 0
