"""Shared pieces of the benchmarks: the agent child process, a raw writer, statistics, tables.

Nothing here asserts on timing; the scripts print what they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import aiohttp

__all__ = [
    "ORIGINS",
    "AgentProcess",
    "Board",
    "CpuPlan",
    "Handoff",
    "Writer",
    "add_origin_arguments",
    "fd_count",
    "machine",
    "median",
    "percentile",
    "pin_cpus",
    "print_table",
    "raw_kv_watch",
    "rss_kib",
]

_SERVER = Path(__file__).with_name("_agent_server.py")


class CpuPlan:
    """Which CPU the benchmark (client, load generator) and the server process run on.

    Pinning is opt-in: :func:`pin_cpus` pins this process to ``client`` and names ``server``
    for :class:`AgentProcess` (``AgentProcess(cpu=plan.server)``), so the two never share a
    core and neither migrates. With fewer than two usable CPUs both are ``None`` (no pinning).
    """

    def __init__(self, client: int | None, server: int | None) -> None:
        self.client = client
        self.server = server

    def __str__(self) -> str:
        if self.client is None:
            return "not pinned"
        return f"client on CPU {self.client}, server on CPU {self.server}"


def pin_cpus() -> CpuPlan:
    """Pin this process to the first usable CPU and reserve the last one for the server."""
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return CpuPlan(None, None)
    if len(usable) < 2:
        return CpuPlan(None, None)
    os.sched_setaffinity(0, {usable[0]})
    return CpuPlan(usable[0], usable[-1])


#: Where a change's delay starts: the agent's own commit of the write (``AgentProcess.kv_stamp``)
#: or a raw writer's acknowledgement (``Writer.put``); ``latency.py`` and ``fanout.py``.
ORIGINS = ("commit", "ack")


def add_origin_arguments(parser: argparse.ArgumentParser) -> None:
    """``--origin`` (both origins by default, interleaved) and ``--pin`` / ``--no-pin``."""
    parser.add_argument(
        "--origin",
        choices=("both", *ORIGINS),
        default="both",
        help="where a change's delay starts: the agent's commit of the write (commit), the"
        " writer's acknowledgement (ack), or both, interleaved in each round (default)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin this process and the agent's to different CPUs (default: on)",
    )


class AgentProcess:
    """A DevAgent running in a child process (see ``_agent_server.py``); ``async with``.

    ``cpu`` pins the child to that CPU (see :func:`pin_cpus`); ``commit_delay`` sets the
    agent's (default: the agent's own); ``floor=True`` runs aiohttp's minimal KV PUT handler
    instead of a dev agent, for the write-throughput floor (it answers :meth:`cpu_seconds`).
    """

    def __init__(
        self,
        *,
        max_conns_per_client: int = 200,
        cpu: int | None = None,
        commit_delay: float | None = None,
        floor: bool = False,
    ) -> None:
        self.max_conns_per_client = max_conns_per_client
        self.cpu = cpu
        self.commit_delay = commit_delay
        self.floor = floor
        self.url = ""
        self.address = ""
        self._child: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> AgentProcess:
        args = [str(_SERVER), str(self.max_conns_per_client)]
        if self.cpu is not None:
            args += ["--cpu", str(self.cpu)]
        if self.commit_delay is not None:
            args += ["--commit-delay", str(self.commit_delay)]
        if self.floor:
            args.append("--floor")
        self._child = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(self._stdout().readline(), 30)
        self.url = line.decode().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the agent process did not start: {line!r}")
        self.address = self.url.removeprefix("http://")
        return self

    @property
    def pid(self) -> int:
        if self._child is None:
            raise RuntimeError("the agent process is not running")
        return self._child.pid

    def _stdout(self) -> asyncio.StreamReader:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("the agent process is not running")
        return self._child.stdout

    async def _ask(self, command: str) -> dict[str, int]:
        if self._child is None or self._child.stdin is None:
            raise RuntimeError("the agent process is not running")
        self._child.stdin.write(command.encode() + b"\n")
        await self._child.stdin.drain()
        answer: dict[str, int] = json.loads(await self._stdout().readline())
        return answer

    async def stats(self, prefix: str = "/") -> dict[str, int]:
        """Connections, blocked queries and request counts (GETs under ``prefix``)."""
        return await self._ask(f"stats {prefix}")

    async def wait_blocked(self, count: int) -> dict[str, int]:
        """Stats once ``count`` blocking queries are held (``"timeout"`` set after 30 s)."""
        return await self._ask(f"blocked {count}")

    async def cpu_seconds(self) -> float:
        """The child process's CPU time so far (user + system, ``process_time``)."""
        return (await self._ask("cpu"))["cpu_us"] / 1e6

    async def kv_set(self, value: str, keys: Sequence[str]) -> int:
        """Write ``value`` to ``keys`` inside the agent (transactions of 64); the new index.

        The write costs this process only one line on a pipe: for CPU-per-update measures.
        ``value`` and the keys must not contain whitespace.
        """
        return (await self._ask(f"kvset {value} {' '.join(keys)}"))["index"]

    async def kv_stamp(self, key: str, value: str) -> float:
        """Write ``value`` at ``key`` inside the agent; ``perf_counter()`` time of its commit.

        The agent's clock is this process's (``CLOCK_MONOTONIC`` on Linux), so the time can be
        compared with a watcher's arrival time. No whitespace in ``key`` or ``value``.
        """
        return (await self._ask(f"kvstamp {key} {value}"))["committed_ns"] / 1e9

    async def clear_requests(self) -> None:
        await self._ask("clear")

    async def reset_connections(self, count: int) -> None:
        """Cut the next ``count`` soak reads without an answer (a connection-reset fault)."""
        await self._ask(f"reset {count}")

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except asyncio.TimeoutError:
            child.kill()
            await child.wait()


class Writer:
    """Writes over one raw aiohttp connection, so every client under test sees the same writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Writer:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the Writer with async with")
        return self._session

    async def put(self, key: str, value: bytes) -> float:
        """PUT ``value`` at ``key``; returns ``perf_counter()`` when acknowledged."""
        async with self._http().put(f"{self.url}/v1/kv/{key}", data=value) as resp:
            body = await resp.read()
        acked = time.perf_counter()
        if resp.status != 200 or body.strip() != b"true":
            raise RuntimeError(f"PUT {key} failed: {resp.status} {body[:200]!r}")
        return acked

    async def put_many(self, items: Iterable[tuple[str, bytes]], *, batch: int = 64) -> None:
        """Write many keys with ``/v1/txn`` (at most ``batch`` operations per transaction)."""
        ops: list[dict[str, object]] = []
        for key, value in items:
            ops.append(
                {"KV": {"Verb": "set", "Key": key, "Value": base64.b64encode(value).decode()}}
            )
            if len(ops) == batch:
                await self._txn(ops)
                ops = []
        if ops:
            await self._txn(ops)

    async def _txn(self, ops: list[dict[str, object]]) -> None:
        async with self._http().put(f"{self.url}/v1/txn", json=ops) as resp:
            body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"txn failed: {resp.status} {body[:200]!r}")


class Board:
    """Arrival times of expected values per key; a future per key completes at ``count``."""

    def __init__(self) -> None:
        self._expected: dict[str, tuple[bytes | None, int]] = {}
        self._times: dict[str, list[float]] = {}
        self._futures: dict[str, asyncio.Future[list[float]]] = {}

    def expect(self, key: str, value: bytes | None, count: int) -> asyncio.Future[list[float]]:
        """A future for the arrival times of ``value`` at ``key`` once ``count`` have it."""
        future = asyncio.get_running_loop().create_future()
        self._expected[key] = (value, count)
        self._times[key] = []
        self._futures[key] = future
        return future

    def arrive(self, key: str, value: bytes | None, received: float) -> None:
        expected = self._expected.get(key)
        if expected is None or value != expected[0]:
            return
        times = self._times[key]
        times.append(received)
        future = self._futures[key]
        if len(times) == expected[1] and not future.done():
            future.set_result(times)


async def raw_kv_watch(
    http: aiohttp.ClientSession, url: str, deliver: Callable[[bytes | None], bool | None]
) -> None:
    """The floor for a Python client: a hand-written long-poll loop over one KV key.

    Index threading (reset when the index goes backwards), ``json.loads`` and base64 only; each
    value goes to ``deliver`` as it is decoded. When ``deliver`` returns true (it woke a
    consumer task, see :class:`Handoff`), the loop yields once so that the consumer takes the
    value before the next request is sent, as ``watch()``'s poll does.
    """
    index = 0
    while True:
        params = {"index": str(index), "wait": "5m"} if index else {}
        async with http.get(url, params=params) as resp:
            body = await resp.read()
            new = int(resp.headers.get("X-Consul-Index", "0"))
        value = None
        if resp.status == 200:
            value = base64.b64decode(json.loads(body)[0]["Value"] or "")
        if deliver(value):
            await asyncio.sleep(0)
        index = max(new, 1) if new >= index else 0


class Handoff:
    """Hands each value to a consumer task through a future, which calls ``deliver``.

    With :func:`raw_kv_watch`, the shape of ``watch()`` (a poll task and a consumer task) with
    nothing else: the floor of that design. Call :meth:`aclose` to stop the consumer.
    """

    def __init__(self, deliver: Callable[[bytes | None], object]) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._latest: bytes | None = None
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        while True:
            await self._ready
            self._ready = self._loop.create_future()
            self._deliver(self._latest)

    def __call__(self, value: bytes | None) -> bool:
        """Make ``value`` the latest; whether the consumer was woken."""
        self._latest = value
        if self._ready.done():
            return False
        self._ready.set_result(None)
        return True

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table, columns left-aligned (first) and right-aligned (the rest)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process in KiB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count() -> int:
    """Open file descriptors of this process (Linux ``/proc``)."""
    return len(os.listdir("/proc/self/fd"))


def machine() -> str:
    """One line naming the machine and versions, printed with every result."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    python = platform.python_version()
    return f"{os.cpu_count()} CPUs, {cpu}, Python {python}, aiohttp {aiohttp.__version__}"
