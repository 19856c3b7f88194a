"""``run_dev``: serve a dev agent in the foreground, like ``consul agent -dev``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any, TextIO

from ._dev_agent import DevAgent
from ._settings import AgentSettings

__all__ = ["run_dev", "run_settings", "serve_dev"]

#: Consul's -log-level names -> Python logging levels (``trace`` is below DEBUG).
_LEVELS = {"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def _agent_kwargs(settings: AgentSettings) -> dict[str, Any]:
    return {
        "client_addr": settings.client_addr,
        "http_port": settings.http_port,
        "node_name": settings.node_name,
        "datacenter": settings.datacenter,
        "bind_addr": settings.bind_addr,
        "node_meta": settings.node_meta,
        "enable_script_checks": settings.enable_script_checks,
        "translate_wan_addrs": settings.translate_wan_addrs,
        "acl_enabled": settings.acl_enabled,
        "acl_default_policy": settings.acl_default_policy,
        "management_token": settings.management_token,
        "data_dir": settings.data_dir,
        "pid_file": settings.pid_file,
        "log_level": settings.log_level,
        "commit_delay": settings.commit_delay,
    }


async def serve_dev(
    host: str = "127.0.0.1",
    port: int = 8500,
    *,
    out: TextIO | None = None,
    ready: asyncio.Future[DevAgent] | None = None,
    **settings: Any,
) -> None:
    """Start a dev agent, print its address and serve until cancelled.

    ``ready`` (if given) receives the running agent, so a caller can stop it by cancelling.
    ``settings`` are further ``DevAgent`` keywords (``node_name``, ``pid_file``, ...).
    """
    stream = out if out is not None else sys.stdout
    async with DevAgent(host=host, port=port, **settings) as agent:
        s = agent.settings
        print("==> Starting Consul agent...", file=stream)
        print("               Version: '1.22.0' (consul-streams dev agent)", file=stream)
        print(f"             Node name: '{agent.config.node_name}'", file=stream)
        print(
            f"            Datacenter: '{agent.config.datacenter}' (Segment: '<all>')", file=stream
        )
        print("                Server: true (Bootstrap: false)", file=stream)
        print(f"           Client Addr: [{agent.host}] (HTTP: {agent.port})", file=stream)
        print(f"          Cluster Addr: {s.bind_addr} (LAN: 8301, WAN: 8302)", file=stream)
        print(f"          Commit delay: {s.commit_delay * 1000:g}ms", file=stream)
        print("==> Consul agent running!", file=stream)
        print(f"    export CONSUL_HTTP_ADDR={agent.url}", file=stream, flush=True)
        if ready is not None and not ready.done():
            ready.set_result(agent)
        await asyncio.Event().wait()


async def _serve_until_signal(settings: AgentSettings) -> None:
    """Serve until SIGINT/SIGTERM; the agent stops cleanly (pid file removed) either way."""
    kwargs = _agent_kwargs(settings)
    host, port = kwargs.pop("client_addr"), kwargs.pop("http_port")
    task = asyncio.ensure_future(serve_dev(host, port, **kwargs))
    loop = asyncio.get_running_loop()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    try:
        await task
    except asyncio.CancelledError:
        if not stopped:
            raise
        print("==> Caught signal, shutting down", file=sys.stderr)


def run_settings(settings: AgentSettings) -> None:
    """Serve a dev agent with resolved ``settings`` until SIGINT or SIGTERM."""
    logging.getLogger("consul_streams.testing").setLevel(_LEVELS[settings.log_level])
    try:
        asyncio.run(_serve_until_signal(settings))
    except KeyboardInterrupt:
        print("==> Caught signal: interrupt, shutting down", file=sys.stderr)


def run_dev(host: str = "127.0.0.1", port: int = 8500, **settings: Any) -> None:
    """Serve a dev agent on ``host:port`` until interrupted (Ctrl-C); ``settings`` as DevAgent."""
    try:
        asyncio.run(serve_dev(host, port, **settings))
    except KeyboardInterrupt:
        print("==> Caught signal: interrupt, shutting down", file=sys.stderr)
