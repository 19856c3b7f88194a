"""``run_dev``: serve a dev agent in the foreground, like ``consul agent -dev``."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from ._dev_agent import DevAgent

__all__ = ["run_dev", "serve_dev"]


async def serve_dev(
    host: str = "127.0.0.1",
    port: int = 8500,
    *,
    out: TextIO | None = None,
    ready: asyncio.Future[DevAgent] | None = None,
) -> None:
    """Start a dev agent, print its address and serve until cancelled.

    ``ready`` (if given) receives the running agent, so a caller can stop it by cancelling.
    """
    stream = out if out is not None else sys.stdout
    async with DevAgent(host=host, port=port) as agent:
        print("==> Starting Consul agent...", file=stream)
        print(f"              Node name: '{agent.config.node_name}'", file=stream)
        print(f"             Datacenter: '{agent.config.datacenter}'", file=stream)
        print(f"            Client Addr: [{agent.host}] (HTTP: {agent.port})", file=stream)
        print("==> Consul agent running!", file=stream)
        print(f"    export CONSUL_HTTP_ADDR={agent.url}", file=stream, flush=True)
        if ready is not None and not ready.done():
            ready.set_result(agent)
        await asyncio.Event().wait()


def run_dev(host: str = "127.0.0.1", port: int = 8500) -> None:
    """Serve a dev agent on ``host:port`` until interrupted (Ctrl-C)."""
    try:
        asyncio.run(serve_dev(host, port))
    except KeyboardInterrupt:
        print("==> Caught signal: interrupt, shutting down", file=sys.stderr)
