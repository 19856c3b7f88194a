"""The dev agent's log, as ``GET /v1/agent/monitor`` streams it.

Consul's monitor attaches a sink to the agent's hclog logger at the requested level. The dev
agent logs what its own agent-level operations do (reload, leave, force-leave, join,
maintenance) in hclog's text format, ``<time> [LEVEL] <logger>: <message>: k=v ...``, and
hands each line to every monitor whose level lets it through.
"""

from __future__ import annotations

import asyncio
import datetime

from .store import StateStore

__all__ = ["LEVELS", "AgentLog", "parse_level"]

#: hclog's levels, lowest first, and the names ``logging.ValidateLogLevel`` accepts.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_ALIASES = {"ERR": "ERROR"}


def parse_level(text: str) -> str | None:
    """The hclog level named ``text`` (case-insensitive; ``ERR`` = ``ERROR``), or None."""
    name = text.upper()
    name = _ALIASES.get(name, name)
    return name if name in LEVELS else None


class AgentLog:
    """Fan-out of agent log lines to the open monitors (one queue per monitor)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._monitors: dict[asyncio.Queue[str], int] = {}

    def reset(self) -> None:
        """Monitors outlive a restart with ``keep_state=False``; nothing to drop."""

    def shift_indexes(self, delta: int) -> None:
        """The log holds no indexes."""

    def subscribe(self, level: str) -> asyncio.Queue[str]:
        """A queue that receives every line at ``level`` or above."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=512)
        self._monitors[queue] = LEVELS.index(level)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._monitors.pop(queue, None)

    @property
    def monitors(self) -> int:
        """How many monitors are attached."""
        return len(self._monitors)

    def http_request(
        self,
        method: str,
        url: str,
        peer: str,
        status: int,
        latency: float,
        error: str | None = None,
    ) -> None:
        """What Consul's HTTP wrapper logs per request (``url`` must carry no token)."""
        if not self._monitors:
            return
        if error is not None:
            self.log("ERROR", "agent.http", "Request error", method=method, url=url,
                     **{"from": peer}, error=error)  # fmt: skip
        micros = latency * 1e6
        took = f"{micros / 1000:.6g}ms" if micros >= 1000 else f"{micros:.6g}\u00b5s"
        self.log("DEBUG", "agent.http", "Request finished", method=method, url=url,
                 **{"from": peer}, latency=took)  # fmt: skip

    def log(self, level: str, logger: str, message: str, **fields: object) -> None:
        """Write one line; monitors that fall 512 lines behind drop lines, as Consul's do."""
        if not self._monitors:
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        pairs = "".join(f" {k}={v}" for k, v in fields.items())
        sep = ":" if pairs else ""
        tag = f"[{level}]"
        line = f"{stamp} {tag:<7} {logger}: {message}{sep}{pairs}\n"
        rank = LEVELS.index(level)
        for queue, wanted in self._monitors.items():
            if rank >= wanted and not queue.full():
                queue.put_nowait(line)
