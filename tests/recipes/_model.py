"""The randomized model behind test_lock_model.py: contenders, faults, and what must hold.

One schedule = one dev agent, N contenders each on its own client behind its own FaultProxy, and
a seeded list of faults (partitions of one contender, session destroys, key deletes, agent
restarts with state kept, connection resets). It runs on a ``consul_streams.testing._warp`` loop,
so session TTLs, lock delays, HTTP timeouts, backoff and lease deadlines share one virtual clock
and a schedule of several virtual minutes takes a fraction of a real second.

Every body logs ``(time, contender, "start"|"stop", token)`` to one list, in the order the
event loop ran them; the checks read that log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass, field
from typing import Literal

from consul_streams import Consul
from consul_streams.exceptions import ConsulError
from consul_streams.recipes import Lock, LockLost, Semaphore, elect
from consul_streams.testing import DevAgent, FaultProxy

Kind = Literal["lock", "semaphore", "elect"]
FaultKind = Literal["partition", "destroy", "delete", "restart", "reset"]

KEY = "model/leader"
PREFIX = "model/workers/"
TTL = 10.0
#: Backoff cap of the watches inside the recipes (watch()'s default).
BACKOFF_CAP = 30.0
MAX_HOLD = 20.0


@dataclass(frozen=True)
class Fault:
    at: float
    kind: FaultKind
    target: int
    duration: float


@dataclass
class Schedule:
    seed: int
    kind: Kind
    lock_delay: float
    contenders: int
    limit: int
    faults: list[Fault]

    @property
    def healed_at(self) -> float:
        return max((f.at + f.duration for f in self.faults), default=0.0)


def make_schedule(seed: int, kind: Kind, *, lock_delay: float) -> Schedule:
    """A seeded schedule. With ``lock_delay=0`` only partitions, resets and restarts: an
    operator's destroy or delete hands the key on at once, and nothing can stop a partitioned
    holder from running until its lease ends (that is what lock-delay is for)."""
    rng = random.Random(seed)
    kinds: list[FaultKind] = ["partition", "partition", "restart", "reset"]
    if lock_delay > 0:
        kinds += ["destroy", "delete"]
    contenders = 3
    faults = []
    for _ in range(rng.randint(2, 5)):
        fault_kind = rng.choice(kinds)
        duration = rng.uniform(1, 30) if fault_kind in ("partition", "restart") else 0.0
        faults.append(
            Fault(rng.uniform(0, 60), fault_kind, rng.randrange(contenders), round(duration, 3))
        )
    faults.sort(key=lambda f: f.at)
    return Schedule(seed, kind, lock_delay, contenders, 2 if kind == "semaphore" else 1, faults)


@dataclass
class Run:
    schedule: Schedule
    log: list[tuple[float, int, str, int | None]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    sessions_left: list[str] = field(default_factory=list)
    held_left: list[str] = field(default_factory=list)
    #: what ended a contender other than the final cancellation (a bug in the recipe).
    errors: list[str] = field(default_factory=list)

    def record(self, who: int, what: str, token: int | None = None) -> None:
        self.log.append((asyncio.get_running_loop().time(), who, what, token))
        if what == "start":
            self.started.set()


async def _hold(run: Run, who: int, rng: random.Random, token: int | None) -> None:
    run.record(who, "start", token)
    try:
        await asyncio.sleep(rng.uniform(1.0, MAX_HOLD))
    finally:
        run.record(who, "stop", token)


async def _contend(run: Run, who: int, client: Consul, rng: random.Random) -> None:
    schedule = run.schedule
    while True:
        try:
            if schedule.kind == "lock":
                lock = Lock(client, KEY, ttl=TTL, lock_delay=schedule.lock_delay)
                async with lock:
                    await _hold(run, who, rng, lock.fencing_token)
            else:
                async with Semaphore(
                    client, PREFIX, schedule.limit, ttl=TTL, lock_delay=schedule.lock_delay
                ):
                    await _hold(run, who, rng, None)
        except LockLost:
            pass
        except ConsulError:  # the agent is down or unreachable: try again
            await asyncio.sleep(1)
        await asyncio.sleep(rng.uniform(0, 2))


async def _follow_election(run: Run, who: int, client: Consul) -> None:
    schedule = run.schedule
    while True:
        try:
            async with contextlib.aclosing(
                elect(client, KEY, ttl=TTL, lock_delay=schedule.lock_delay)
            ) as terms:
                async for term in terms:
                    run.record(who, "start" if term.leader else "stop", term.fencing_token)
        except ConsulError:  # the agent is down or unreachable: try again
            if run.log and run.log[-1][1] == who and run.log[-1][2] == "start":
                run.record(who, "stop", run.log[-1][3])
            await asyncio.sleep(1)


async def _apply(
    fault: Fault, agent: DevAgent, proxies: list[FaultProxy], admin: Consul, kind: Kind
) -> None:
    await asyncio.sleep(max(0.0, fault.at - asyncio.get_running_loop().time()))
    if fault.kind == "partition":
        proxies[fault.target].blackhole()
        await asyncio.sleep(fault.duration)
        proxies[fault.target].heal()
    elif fault.kind == "reset":
        proxies[fault.target].reset()
    elif fault.kind == "restart":
        await agent.stop()
        await asyncio.sleep(fault.duration)
        await agent.start()
    elif not agent.running:
        return
    elif fault.kind == "destroy":
        entries, _ = await admin.kv.items(PREFIX if kind == "semaphore" else KEY)
        sessions = sorted({e["Session"] for e in entries if e.get("Session")})
        if sessions:
            await admin.session.destroy(sessions[fault.target % len(sessions)])
    elif fault.kind == "delete":
        if any(not proxy.mode.open.is_set() for proxy in proxies):
            # Consul sets no lock-delay on a delete: a contender that never saw the key held
            # (it started or reconnected after the delete) cannot know a partitioned holder
            # still runs. docs/locks.md states this limit; deletes happen while all are
            # connected.
            return
        if kind == "semaphore":
            entries, _ = await admin.kv.items(PREFIX)
            keys = sorted(e["Key"] for e in entries if e.get("Session"))
            if keys:
                await admin.kv.delete(keys[fault.target % len(keys)])
        else:
            await admin.kv.delete(KEY)


async def run_schedule(schedule: Schedule) -> Run:
    """Play ``schedule``; after the last fault heals, wait for the liveness bound, stop every
    contender and let the TTLs run out, then record what was left behind."""
    run = Run(schedule)
    loop = asyncio.get_running_loop()
    async with DevAgent(jitter=False) as agent, Consul(agent.address) as admin:
        proxies = [FaultProxy(agent.address) for _ in range(schedule.contenders)]
        clients: list[Consul] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, proxy in enumerate(proxies):
                await proxy.start()
                client = Consul(proxy.address)
                clients.append(client)
                rng = random.Random(schedule.seed * 100 + i)
                if schedule.kind == "elect":
                    coro = _follow_election(run, i, client)
                else:
                    coro = _contend(run, i, client, rng)
                tasks.append(asyncio.create_task(coro))
            faults = [
                asyncio.create_task(_apply(f, agent, proxies, admin, schedule.kind))
                for f in schedule.faults
            ]
            await asyncio.gather(*faults)
            await asyncio.sleep(max(0.0, schedule.healed_at - loop.time()))
            # Liveness: wait (at most the bound) for a body to start after the last heal. A
            # holder that runs through the heal counts too, but whether it does is only known
            # once the events of that very moment (a destroy, a delete) have played out.
            bound = TTL + schedule.lock_delay + BACKOFF_CAP
            run.started.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.started.wait(), bound)
            await asyncio.sleep(1)
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            run.errors = [
                repr(o)
                for o in outcomes
                if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)
            ]
            for proxy in proxies:
                proxy.heal()
            # Anything a cancelled contender could not clean up is the TTL's to reap.
            await asyncio.sleep(2 * TTL + 1)
            if agent.running:
                sessions, _ = await admin.session.list()
                run.sessions_left = [s["ID"] for s in sessions]
                entries, _ = await admin.kv.items("model/")
                run.held_left = [e["Key"] for e in entries if e.get("Session")]
            for client in clients:
                await client.aclose()
            for proxy in proxies:
                await proxy.stop()
    return run


def overlaps(run: Run) -> list[str]:
    """Every moment more than ``limit`` bodies ran at once."""
    active: set[int] = set()
    problems = []
    for t, who, what, _ in run.log:
        if what == "start":
            active.add(who)
            if len(active) > run.schedule.limit:
                problems.append(f"t={t:.3f}: {sorted(active)} ran at once")
        else:
            active.discard(who)
    return problems


def tokens_increase(run: Run) -> bool:
    tokens = [token for _, _, what, token in run.log if what == "start"]
    return all(a is not None and b is not None and a < b for a, b in itertools.pairwise(tokens))


def active_at(run: Run, moment: float) -> set[int]:
    active: set[int] = set()
    for t, who, what, _ in run.log:
        if t > moment:
            break
        if what == "start":
            active.add(who)
        else:
            active.discard(who)
    return active


def liveness_gap(run: Run) -> float | None:
    """Seconds from the last heal until a body runs (0: one ran right then; None: never)."""
    healed = run.schedule.healed_at
    if active_at(run, healed):
        return 0.0  # a holder that is still running when the faults end
    starts = [t for t, _, what, _ in run.log if what == "start" and t >= healed]
    return (starts[0] - healed) if starts else None
