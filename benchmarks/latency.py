"""Propagation latency: a change's origin -> value received, ping-pong over one key.

Run: ``.venv/bin/python benchmarks/latency.py`` (``--quick`` for a smoke run of a few seconds,
``--plot docs/benchmarks-latency.png`` to draw the distributions, ``--diagnose`` to add a run
of ``watch()`` patched back to round 1's design (a poll task that sends its next request before
the consumer runs) and the raw loop handing each value to a consumer task (the floor of that
design); ``--timeline`` to
split each change at the moment the answer's bytes arrive, with the client's CPU after it).

Clients, each a watcher task that timestamps a value the moment it is decoded:

* ``consul_streams``: ``watch(c.kv.get(key), rate_limit=None)``;
* ``consul_streams (default limiter)``: ``watch(c.kv.get(key))``, the token bucket Consul's
  blocking-query guidance asks for (burst 2, then 1 round/s): back-to-back writes wait for it;
* ``raw aiohttp``: a hand-written long-poll loop (index threading, JSON and base64 decoding
  only): the floor for a Python client;
* ``py-consul``: ``index, data = await c.kv.get(key, index=index)`` in a loop.

The next value is written only after the watcher received the previous one. Two origins of a
change, both measured in every round (``--origin`` picks one):

* ``commit``: the agent writes the key itself (``kvstamp`` on its command pipe) and stamps the
  moment it commits, which wakes the watcher; latency = commit -> value received, clocks
  compared across processes (``CLOCK_MONOTONIC``). Nothing else runs on the client's loop, and
  the agent answers only the watcher: the client's own path and the agent's answer;
* ``ack``: a raw aiohttp writer (one connection, in this process, on the watcher's event loop)
  PUTs the value; latency = write acknowledged -> value received. The agent answers the PUT
  and the watcher in an order it does not fix, and the writer's task shares the client's loop,
  so this one swings between runs (docs/benchmarks.md section 1).

Rounds alternate the clients in rotating order; the table gives the pooled median/p99, the
median over rounds of each round's ratio and the spread (min-max) of the per-round median
ratios. The agent runs in a child process, and the benchmark pins itself and the agent to
different CPUs (``--no-pin`` not to), so the agent's CPU does not share the client's core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import consul.aio

from benchmarks._common import (
    ORIGINS,
    AgentProcess,
    Handoff,
    Writer,
    add_origin_arguments,
    machine,
    median,
    percentile,
    pin_cpus,
    print_table,
    raw_kv_watch,
)
from consul_streams import Consul
from consul_streams.watch import RateLimit, watch


class Sink:
    """Hands the arrival time of the value the driver waits for back to the driver."""

    def __init__(self) -> None:
        self._expected: bytes | None = None
        self._future: asyncio.Future[float] | None = None
        #: this thread's CPU time when the expected value was delivered (``--timeline``)
        self.delivered_cpu = 0.0

    def expect(self, value: bytes) -> asyncio.Future[float]:
        self._expected = value
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    def deliver(self, value: bytes | None, received: float) -> None:
        future = self._future
        if future is not None and not future.done() and value == self._expected:
            self.delivered_cpu = time.thread_time()
            future.set_result(received)


Watcher = Callable[[str, str, Sink], Coroutine[Any, Any, None]]


def _consul_streams(rate_limit: RateLimit | None) -> Watcher:
    async def run(address: str, key: str, sink: Sink) -> None:
        async with Consul(address, environ={}) as client:
            async for entry, _meta in watch(client.kv.get(key), rate_limit=rate_limit):
                sink.deliver(entry["Value"] if entry else None, time.perf_counter())

    return run


async def _raw_aiohttp(address: str, key: str, sink: Sink) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        def deliver(value: bytes | None) -> None:
            sink.deliver(value, time.perf_counter())

        await raw_kv_watch(http, f"http://{address}/v1/kv/{key}", deliver)


async def _py_consul(address: str, key: str, sink: Sink) -> None:
    host, port = address.rsplit(":", 1)
    client = consul.aio.Consul(host=host, port=int(port))
    try:
        index = None
        while True:
            index, data = await client.kv.get(key, index=index)
            sink.deliver(data["Value"] if data else None, time.perf_counter())
    finally:
        await client.close()


async def _raw_aiohttp_hop(address: str, key: str, sink: Sink) -> None:
    """Diagnostic: the raw loop, each value handed to a consumer task through a future.

    The shape of ``watch()`` (a poll task, a consumer task) with nothing else: the floor of
    that design. Like ``Poller.run``, the loop yields once after waking the consumer, so the
    consumer runs before the next request is sent.
    """

    def deliver(value: bytes | None) -> None:
        sink.deliver(value, time.perf_counter())

    handoff = Handoff(deliver)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await raw_kv_watch(http, f"http://{address}/v1/kv/{key}", handoff)
    finally:
        await handoff.aclose()


def _poll_first() -> Watcher:
    """Diagnostic: ``watch(rate_limit=None)`` as round 1 ran it: in a poll task of its own,
    sending the next request before the consumer takes the value.

    A single consumer's watch now runs its rounds in the consumer's task (#13, third round);
    a shared poll's task yields once after waking consumers, so they take the value before the
    next long-poll goes out (a ``socket.send`` that wakes the agent). This switches the private
    ``_share.INLINE`` off and patches ``Hub.publish`` to report "nobody woken", for the
    duration of the watch only, to show what both buy in the same run.
    """
    from consul_streams import _share

    async def run(address: str, key: str, sink: Sink) -> None:
        original, inline = _share.Hub.publish, _share.INLINE

        def publish(self: _share.Hub, round_: Any) -> bool:
            original(self, round_)
            return False  # the poll then sends its next request at once

        _share.Hub.publish = publish  # type: ignore[method-assign]
        _share.INLINE = False
        try:
            await _consul_streams(None)(address, key, sink)
        finally:
            _share.Hub.publish = original  # type: ignore[method-assign]
            _share.INLINE = inline

    return run


CLIENTS: dict[str, Watcher] = {
    "consul_streams": _consul_streams(None),
    "raw aiohttp": _raw_aiohttp,
    "py-consul": _py_consul,
}
LIMITED = "consul_streams (default limiter)"
ORIGIN_TEXT = {
    "commit": "commit -> value received (the agent writes the key itself and stamps its commit)",
    "ack": "write acknowledged -> value received (a raw aiohttp writer in this process)",
}
HOP = "raw aiohttp, value handed to a consumer task (diagnostic)"
DIAGNOSTIC = "consul_streams, poll task, next poll first (round-1 design, patched)"


class Timeline:
    """``--timeline``: when the bytes of each value reach the client, split from what follows.

    Stamps every chunk aiohttp's client protocol receives (a patch of
    ``ResponseHandler.data_received``, installed for the run); the chunk that carries a KV
    entry (``"Value"``) is the watcher's answer. Per change it records ``(ack -> that chunk,
    max(ack, that chunk) -> value delivered)``: the first part is the agent's ordering (often
    negative: the answer's bytes arrive before the writer's task has taken its acknowledgement),
    the same for every client; the second is the client's own path once both are in.
    Also the client thread's CPU time from that chunk to the value delivered, which a busy
    machine does not inflate as much as it does wall time (it includes the writer's own
    handling of its acknowledgement when that comes in between, the same for every client).
    """

    def __init__(self) -> None:
        self.chunks: list[tuple[float, float]] = []
        self.splits: dict[str, list[tuple[float, float, float]]] = {}

    def install(self) -> None:
        from aiohttp.client_proto import ResponseHandler

        original = ResponseHandler.data_received
        chunks = self.chunks

        def data_received(handler: ResponseHandler, data: bytes) -> None:
            if b'"Value"' in data:
                chunks.append((time.perf_counter(), time.thread_time()))
            original(handler, data)

        ResponseHandler.data_received = data_received  # type: ignore[method-assign,assignment]

    def record(self, name: str, acked: float, arrived: float, cpu: float) -> None:
        answer = [(t, c) for t, c in self.chunks if t <= arrived]
        if answer:
            last, last_cpu = answer[-1]
            split = (last - acked, arrived - max(last, acked), cpu - last_cpu)
            self.splits.setdefault(name, []).append(split)
        self.chunks.clear()

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for name, splits in self.splits.items():
            agent = [a for a, _, _ in splits]
            client = [c for _, c, _ in splits]
            cpu = [u for _, _, u in splits]
            rows.append(
                (name, str(len(splits)), _us(median(agent)), _us(median(client)), _us(median(cpu)))
            )
        return rows


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


Put = Callable[[str, bytes], Awaitable[float]]


async def ping_pong(
    agent: AgentProcess,
    put: Put,
    watcher: Watcher,
    key: str,
    changes: int,
    warmup: int,
    timeline: tuple[Timeline, str] | None = None,
) -> list[float]:
    """Seconds from each write's origin (``put``'s answer) to the watcher holding the value."""
    sink = Sink()
    await put(key, b"start")
    first = sink.expect(b"start")
    task = asyncio.create_task(watcher(agent.address, key, sink))
    samples: list[float] = []
    try:
        await asyncio.wait_for(first, 30)
        for i in range(warmup + changes):
            value = f"{key}:{i}".encode()
            received = sink.expect(value)
            if timeline is not None:
                timeline[0].chunks.clear()
            acked = await put(key, value)
            arrived = await asyncio.wait_for(received, 30)
            if i >= warmup:
                samples.append(arrived - acked)
                if timeline is not None:
                    timeline[0].record(timeline[1], acked, arrived, sink.delivered_cpu)
    finally:
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        raise RuntimeError(f"watcher failed on {key}") from task.exception()
    return samples


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _ratio_rows(samples: dict[str, list[list[float]]], rounds: int) -> list[tuple[str, ...]]:
    """Per client: pooled median/p99 and the median over rounds of per-round ratios."""

    def per_round(name: str, stat: Callable[[list[float]], float]) -> list[float]:
        return [stat(r) for r in samples[name]]

    def p99(values: list[float]) -> float:
        return percentile(values, 99)

    def ratios(name: str, base: str, stat: Callable[[list[float]], float]) -> list[float]:
        if name not in samples or base not in samples:
            return []
        mine, theirs = per_round(name, stat), per_round(base, stat)
        n = min(len(mine), len(theirs))
        return [a / b for a, b in zip(mine[:n], theirs[:n], strict=True)]

    def ratio(name: str, base: str, stat: Callable[[list[float]], float]) -> str:
        values = ratios(name, base, stat)
        return f"{median(values):.2f}" if values else "-"

    def spread(name: str, base: str) -> str:
        values = ratios(name, base, median)
        return f"{min(values):.2f}-{max(values):.2f}" if values else "-"

    rows: list[tuple[str, ...]] = []
    for name, per in samples.items():
        pooled = [s for r in per for s in r]
        rows.append(
            (
                name,
                str(len(pooled)),
                _ms(median(pooled)),
                _ms(p99(pooled)),
                f"{ratio(name, 'raw aiohttp', median)} / {ratio(name, 'raw aiohttp', p99)}",
                f"{ratio(name, 'py-consul', median)} / {ratio(name, 'py-consul', p99)}",
                spread(name, "raw aiohttp"),
                spread(name, "py-consul"),
                str(sum(1 for s in pooled if s < 0)),
            )
        )
    return rows


def plot(samples: dict[str, list[list[float]]], path: Path, origin: str) -> None:
    """Empirical CDFs of the latencies (ms, log scale), one line per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(9, 4.8))
    for name, per in samples.items():
        if name == DIAGNOSTIC:
            continue
        pooled = sorted(max(s * 1000, 1e-3) for r in per for s in r)
        ys = [(i + 1) / len(pooled) for i in range(len(pooled))]
        style = "--" if name == LIMITED else "-"
        axes.step(pooled, ys, style, where="post", label=f"{name} (n={len(pooled)})")
    axes.set_xscale("log")
    axes.set_xlabel(f"{origin.partition(' (')[0]} (ms, log scale)")
    axes.set_ylabel("fraction of changes (CDF)")
    axes.set_title("Propagation latency, ping-pong over one key (agent in a child process)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=100, help="measured changes per round")
    parser.add_argument(
        "--limited-changes",
        type=int,
        default=8,
        help="changes per round with the default rate limit (each costs ~1 s by design)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 short rounds")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="add a run of watch() patched to send its next request before delivering",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of the distributions here")
    parser.add_argument("--json", type=Path, help="dump the raw samples (seconds) here")
    add_origin_arguments(parser)
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="split each change into ack -> answer bytes received -> value delivered",
    )
    args = parser.parse_args(argv)
    timeline = Timeline() if args.timeline else None
    if timeline is not None:
        timeline.install()
    if args.quick:
        args.rounds, args.changes, args.limited_changes = 2, 30, 2

    clients: dict[str, tuple[Watcher, int]] = {n: (w, args.changes) for n, w in CLIENTS.items()}
    if args.diagnose:
        clients[HOP] = (_raw_aiohttp_hop, args.changes)
        clients[DIAGNOSTIC] = (_poll_first(), args.changes)
    if args.limited_changes > 0:
        clients[LIMITED] = (_consul_streams(RateLimit()), args.limited_changes)
    origins = ORIGINS if args.origin == "both" else (args.origin,)
    by_origin: dict[str, dict[str, list[list[float]]]] = {
        origin: {name: [] for name in clients} for origin in origins
    }
    names = list(clients)
    plan = pin_cpus() if args.pin else None
    server_cpu = plan.server if plan is not None else None
    async with AgentProcess(cpu=server_cpu) as agent, Writer(agent.url) as writer:

        async def committed(key: str, value: bytes) -> float:
            return await agent.kv_stamp(key, value.decode())

        puts: dict[str, Put] = {"ack": writer.put, "commit": committed}
        for round_ in range(args.rounds):
            shift = round_ % len(names)  # rotate the order so warm-up favours no client
            for origin in origins:
                for name in names[shift:] + names[:shift]:
                    watcher, changes = clients[name]
                    key = f"bench/latency/{origin}/{round_}/{names.index(name)}"
                    warmup = 2 if name == LIMITED else 5
                    traced = (timeline, name) if timeline is not None else None
                    by_origin[origin][name].append(
                        await ping_pong(agent, puts[origin], watcher, key, changes, warmup, traced)
                    )
    pinned = f", {plan}" if plan is not None else ""
    for origin in origins:
        print(f"# propagation latency, {args.rounds} rounds, {ORIGIN_TEXT[origin]}")
        print(f"# ({machine()}{pinned})")
        print_table(
            (
                "client",
                "changes",
                "median ms",
                "p99 ms",
                "vs raw aiohttp (median / p99)",
                "vs py-consul (median / p99)",
                "median ratio per round vs raw",
                "vs py-consul",
                "negative",
            ),
            _ratio_rows(by_origin[origin], args.rounds),
        )
        print()
    samples = by_origin[origins[0]]
    print(
        "targets: consul_streams / raw aiohttp <= 1.10, consul_streams / py-consul <= 1.0;"
        " ratios: median over rounds of each round's ratio, then the spread (min-max) of the"
        " per-round median ratios; 'negative': value decoded before the write's origin"
        " (the writer's acknowledgement can come after the watcher's answer)"
    )
    if timeline is not None:
        print()
        print_table(
            (
                "client",
                "changes",
                "ack -> answer bytes, us",
                "both in -> delivered, us",
                "CPU answer bytes -> delivered, us",
            ),
            timeline.rows(),
        )
        print("(medians; the first column is the agent's and the same for all, the second ours)")
    if args.json is not None:
        args.json.write_text(json.dumps(by_origin))
    if args.plot is not None:
        plot(samples, args.plot, ORIGIN_TEXT[origins[0]])
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
