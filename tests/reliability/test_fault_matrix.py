"""Fault matrix: every watch kind x every fault converges, never busy-loops, classifies errors.

Each cell seeds an agent, starts the watch, waits until it is parked in a blocking query,
injects one fault, makes the changes whose last one is "the final update", and then checks:

* the stream's last emitted state equals the server's state (no final update lost);
* the watched path saw no more GETs than the fault itself plus what the token bucket
  (:data:`RATE`) and the backoff (:data:`BACKOFF`, jitter pinned at its maximum) allow over the
  cell's duration;
* ``stream.stats.errors`` counts exactly the error kinds the fault provokes, and the watch's
  (or recipe's) health reported each of those failed attempts while the fault lasted;
* no exception reached the event loop's exception handler (nothing escaped to the user's loop).

The faults follow the error policy (docs/contracts.md, "Error policy"): connection errors,
timeouts, 429/5xx, a garbage 2xx body, a truncated body and a blocking answer without an index
are retried until they heal; ``400`` and ``403-raise`` (a token not valid yet, under the default
policy) end the stream with the typed error after the first faulty answer, with no backoff and
no further request. ``403-retry`` waits the token out under a policy that says so. Faults that
last until healed (``no-index``, ``trickle``, ``blackhole``) are healed once the health has
reported two failed attempts in a row; meanwhile the recipes must still serve their last good
state (``Kind.during_fault``). ``trickle`` and ``blackhole`` run the watch through a loopback
proxy (``_proxy.py``): an answer sent a byte at a time must be cut by the request's total
deadline, and a non-blocking read into a black hole by the client's (short) timeout.

The ``lock`` kind (a lock holder) joins the matrix where ``Lock`` publishes its health
(``Lock(health=)``, the locks work): a retried failure must not lose the lock, a non-retriable
one is reported as its loss (``LockLost``, with the typed error in its health). It sits out
``restart-lost`` (the session is gone with the agent's state) and the token faults (they hit
the session create, not the watched key).

``conftest.py`` prints a kind x fault grid of the outcomes at the end of the session.

Each cell has its own agent and client, and most of a cell's time is spent waiting (read
timeouts, backoff, token validity), so the module runs the selected cells concurrently in one
event loop (:func:`outcomes`, at most :data:`PARALLEL` at a time) and each test reports its own
cell's outcome, traceback included. Cells that restart an agent run alone first: the restarted
agent rebinds its port, which a concurrently started agent or connection could otherwise take.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from consul_streams import BadRequest, Consul, ConsulError, PermissionDenied
from consul_streams.testing import DevAgent, Fault

from ._harness import RATE, Tracker, max_error_requests, success_bound, watched_requests
from ._kinds import KINDS, Kind
from ._proxy import FaultProxy

ADMIN = "root-token"
APP = "app-token"
#: a response held past the read timeout (WAIT * 17/16 + SLACK ~ 1.56 s)
SLOW = 2.2
#: how long a persistent fault stays on after convergence, to measure the request rate
WINDOW = 0.3
#: when a not-yet-valid token becomes valid
TOKEN_VALID_AFTER = 0.4
CONVERGE = 10.0
#: cells in flight at once; most of a cell is waiting, and each has its own agent
PARALLEL = 12
#: what one cell may take, at most, before it counts as hung
CELL_TIMEOUT = 60.0
#: the proxied client's default timeout: the deadline of its non-blocking reads
PROXIED_TIMEOUT = 1.0
#: failed attempts in a row after which a lasting fault is healed
HEAL_AFTER = 2


@dataclass
class Cell:
    """What a fault did: its rules, and the error kinds (with count range) it must cause."""

    rules: list[Fault] = field(default_factory=list)
    errors: dict[str, tuple[int, int]] = field(default_factory=dict)
    persistent: bool = False
    resets: bool = False
    #: the error that ends the stream (the default policy does not retry it)
    raises: type[ConsulError] | None = None
    #: requests sent after the fault was injected before the error ended the stream
    raised_after: int = 0
    #: a fault that lasts until healed: heal it after HEAL_AFTER failed attempts
    heal: Callable[[], None] | None = None


Inject = Callable[[DevAgent, Kind, FaultProxy | None], Awaitable[Cell]]


def _get(kind: Kind) -> dict[str, Any]:
    # The fault hits only the watch's reads; writes and the final server read go through.
    return {"path": kind.path if kind.path.endswith("/") else kind.path + "$", "method": "GET"}


async def _drop(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    # Held, then cut mid-request. aiohttp silently retries a GET once on a reused
    # keep-alive connection, so the second drop is the one the watch sees.
    hold = agent.faults.delay(0.1, count=1, **_get(kind))
    return Cell([hold, agent.faults.drop_connection(2, **_get(kind))], {"ConnectError": (1, 2)})


async def _restart_keep(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    await agent.restart(keep_state=True)
    return Cell(errors={"ConnectError": (1, 10)})


async def _restart_lost(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    await agent.restart(keep_state=False)
    return Cell(errors={"ConnectError": (1, 10)})


async def _restore_lower(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    agent.restore_snapshot(-3)
    return Cell(resets=kind.index_mode)


def _burst(status: int, error: str) -> Inject:
    async def inject(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
        rule = agent.faults.fail_next(3, status=status, body="burst", **_get(kind))
        return Cell([rule], {error: (3, 3)})

    return inject


async def _slow(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    return Cell([agent.faults.delay(SLOW, count=1, **_get(kind))], {"ReadTimeout": (1, 1)})


async def _garbage_2xx(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    # A 200 whose body is not Consul's JSON (a proxy's error page): retried by the policy.
    return Cell([agent.faults.malformed_json(1, **_get(kind))], {"DecodeError": (1, 1)})


async def _bad_request(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    # Consul's answer to a filter it cannot parse: retrying cannot heal it.
    body = "Failed to create boolean expression evaluator: 1:1 (0): no match found"
    rule = agent.faults.fail_next(1, status=400, body=body, **_get(kind))
    return Cell([rule], {"BadRequest": (1, 1)}, raises=BadRequest, raised_after=1)


async def _truncated(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    # A body cut short is a connection broken mid-answer (aiohttp's payload error).
    return Cell([agent.faults.truncate_body(1, **_get(kind))], {"ConnectError": (1, 1)})


async def _no_index(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    # Every answer without X-Consul-Index until healed: each one is a failed attempt.
    rule = agent.faults.strip_index(None, **_get(kind))
    return Cell([rule], {"DecodeError": (HEAL_AFTER, 10)}, heal=rule.cancel)


async def _trickle(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    assert proxy is not None
    proxy.mode = "trickle"
    return Cell(errors={"ReadTimeout": (HEAL_AFTER, 10)}, heal=proxy.heal)


async def _blackhole(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    assert proxy is not None
    proxy.mode = "blackhole"
    return Cell(errors={"ReadTimeout": (HEAL_AFTER, 10)}, heal=proxy.heal)


async def _zero_index(agent: DevAgent, kind: Kind, proxy: FaultProxy | None) -> Cell:
    rule = agent.faults.zero_index(None, **_get(kind))
    return Cell([rule], persistent=True)


FAULTS: dict[str, Inject] = {
    "drop": _drop,
    "restart-keep": _restart_keep,
    "restart-lost": _restart_lost,
    "restore-lower": _restore_lower,
    "429": _burst(429, "RateLimited"),
    "500": _burst(500, "ServerError"),
    "503": _burst(503, "ServerError"),
    "slow": _slow,
    "garbage-2xx": _garbage_2xx,
    "truncated": _truncated,
    "no-index": _no_index,
    "zero-index": _zero_index,
    "trickle": _trickle,
    "blackhole": _blackhole,
    "400": _bad_request,
}
#: faults that act below HTTP: the watch goes through a FaultProxy
PROXY_FAULTS = frozenset({"trickle", "blackhole"})
TOKEN_FAULTS = ("403-retry", "403-raise")
ALL_FAULTS = (*FAULTS, *TOKEN_FAULTS)


#: cells that do not apply: a lock cannot survive losing its session (restart-lost), and its
#: token faults hit the session create, not the watched key
NOT_APPLICABLE = frozenset({("lock", "restart-lost"), ("lock", "403-retry"), ("lock", "403-raise")})


def _cells() -> list[Any]:
    cells = []
    for kind in KINDS:
        for fault in ALL_FAULTS:
            if (kind, fault) not in NOT_APPLICABLE:
                cells.append(pytest.param(kind, fault, id=f"{kind}-{fault}"))
    return cells


def _retry_permission(exc: ConsulError) -> bool:
    """A retry policy that also waits out a token that is not valid yet."""
    return exc.retriable or isinstance(exc, PermissionDenied)


#: The retry policy of a fault's watch (default: None, the error policy).
RETRY: dict[str, Callable[[ConsulError], bool]] = {}


def _check_errors(kind: Kind, expected: dict[str, tuple[int, int]]) -> None:
    # The health reported every failed attempt (one published value each).
    reported = kind.failed_attempts()
    counted = kind.errors()
    errors = reported if counted is None else counted
    assert reported == errors, f"health reported {reported}, the watch counted {errors}"
    assert set(errors) == set(expected), f"errors {errors}, expected kinds {set(expected)}"
    for name, (low, high) in expected.items():
        assert low <= errors[name] <= high, f"{name}: {errors[name]} not in [{low}, {high}]"


@pytest.fixture(autouse=True)
def _record_cell(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None:
        request.node.user_properties.append(
            ("fault_cell", (callspec.params["kind_name"], callspec.params["fault"]))
        )


async def _converge(tracker: Tracker[Any], kind: Kind, client: Consul) -> None:
    """Wait for the final update, then for the stream to equal the server's state."""
    await tracker.until(kind.has_final, CONVERGE)
    assert tracker.error is None, f"stream ended: {tracker.error!r}"
    server = await kind.server(client)
    await tracker.until(lambda state: kind.converged(state, server), CONVERGE)
    assert tracker.error is None, f"stream ended: {tracker.error!r}"
    assert kind.converged(tracker.state, server), (tracker.state, server)


#: faults that restart the agent on its port: run alone, see the module docstring
EXCLUSIVE = frozenset({"restart-keep", "restart-lost"})
#: faults whose cells take longest: started first so that the rest overlap them
LONGEST = ("trickle", "blackhole", "slow", "403-retry", "no-index", "zero-index")

Outcomes = dict[tuple[str, str], Exception | None]


async def _run_cells(cells: list[tuple[str, str]]) -> Outcomes:
    """Every cell's outcome: None when it passed, else what it raised."""
    gate = asyncio.Semaphore(PARALLEL)
    escaped: list[dict[str, Any]] = []
    # Anything reaching the loop's handler escaped a watch or recipe into the user's loop.
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: escaped.append(ctx))

    async def run(cell: tuple[str, str]) -> Exception | None:
        async with gate:
            try:
                await asyncio.wait_for(_run_cell(*cell), CELL_TIMEOUT)
            except Exception as exc:  # reported by the cell's own test
                return exc
            return None

    alone = [c for c in cells if c[1] in EXCLUSIVE]
    together = sorted(
        (c for c in cells if c[1] not in EXCLUSIVE),
        key=lambda c: LONGEST.index(c[1]) if c[1] in LONGEST else len(LONGEST),
    )
    outcomes = {cell: await run(cell) for cell in alone}
    results = await asyncio.gather(*(run(cell) for cell in together))
    outcomes.update(zip(together, results, strict=True))
    if escaped:
        # Not attributable to one cell (they share the loop): every cell reports it.
        error = AssertionError(f"escaped to the event loop: {escaped}")
        outcomes = {cell: outcome or error for cell, outcome in outcomes.items()}
    return outcomes


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Outcomes:
    """Runs the selected cells of this module (after ``-k``/``-m``) and keeps their outcomes."""
    cells = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", None) == "test_fault_cell" and callspec is not None:
            cells.append((str(callspec.params["kind_name"]), str(callspec.params["fault"])))
    return asyncio.run(_run_cells(cells))


@pytest.mark.parametrize(("kind_name", "fault"), _cells())
def test_fault_cell(kind_name: str, fault: str, outcomes: Outcomes) -> None:
    """The watch survives the fault: converges, stays under the request bound, counts errors."""
    error = outcomes[(kind_name, fault)]
    if error is not None:
        raise error


async def _run_cell(kind_name: str, fault: str) -> None:
    """One cell: inject ``fault`` under a watch of ``kind_name`` and check the outcome."""
    if fault in TOKEN_FAULTS:
        await _token_cell(KINDS[kind_name](), fault)
        return
    kind = KINDS[kind_name]()
    async with DevAgent(jitter=False) as agent, Consul(agent.url, environ={}) as client:
        if fault not in PROXY_FAULTS:
            await _faulted_cell(agent, kind, fault, client, client, None)
            return
        async with (
            FaultProxy(agent.address) as proxy,
            Consul(proxy.url, timeout=PROXIED_TIMEOUT, environ={}) as proxied,
        ):
            await _faulted_cell(agent, kind, fault, client, proxied, proxy)


async def _faulted_cell(
    agent: DevAgent,
    kind: Kind,
    fault: str,
    client: Consul,
    watched: Consul,
    proxy: FaultProxy | None,
) -> None:
    """``client`` writes and reads the truth; ``watched`` is the client under the watch."""
    loop = asyncio.get_running_loop()
    await kind.seed(client)
    tracker: Tracker[Any] = Tracker(kind.source(watched, RETRY.get(fault)), kind.fold)
    try:
        await tracker.until(lambda _: tracker.items > 0, CONVERGE)
        assert tracker.error is None, f"stream ended: {tracker.error!r}"
        await asyncio.wait_for(agent.wait_blocked(1), CONVERGE)
        since, started = len(agent.requests), loop.time()
        cell = await FAULTS[fault](agent, kind, proxy)
        kind.expected = cell.errors
        await kind.change(client)
        if cell.raises is not None:
            await _check_raised(tracker, kind, cell, agent, since)
            return
        if cell.heal is not None:
            await kind.until_failures(HEAL_AFTER, CONVERGE)
            assert tracker.error is None, f"stream ended: {tracker.error!r}"
            health = kind.health.health
            assert not health.ok, health
            assert health.retrying, health
            assert health.failing_since is not None, health
            await kind.during_fault()
            cell.heal()
        await _converge(tracker, kind, client)
        assert (await kind.health.wait_healthy(CONVERGE)).ok
        if cell.persistent:
            # A measurement window for the rate under the fault, not a wait for a state.
            await asyncio.sleep(WINDOW)
        elapsed = loop.time() - started
        requests = watched_requests(agent, kind.path, since)
        # A persistent rule's hits are successful rounds: the token bucket must bound them.
        faulted = 0 if cell.persistent else sum(rule.hits for rule in cell.rules)
        bound = (
            faulted
            + success_bound(RATE, elapsed)
            + max_error_requests(kind.backoff, elapsed)
            + 1  # the blocked request the fault interrupted
        )
        assert requests <= bound, f"{requests} requests in {elapsed:.2f}s, bound {bound}"
        _check_errors(kind, cell.errors)
        if cell.resets and kind.errors() is not None:  # a recipe's watch stats are private
            assert kind.stats().index_resets >= 1
    finally:
        await tracker.aclose()


async def _check_raised(
    tracker: Tracker[Any], kind: Kind, cell: Cell, agent: DevAgent, since: int
) -> None:
    """The fault's error ended the stream at its first hit, counted once, nothing re-sent:
    no backoff, so the typed error arrives as soon as the answer does."""
    assert cell.raises is not None
    error = await tracker.ended(CONVERGE)
    assert error is not None
    assert kind.raised_as(error, cell.raises), (repr(error), kind.health.health)
    assert [rule.hits for rule in cell.rules] == [1] * len(cell.rules)
    # Only the requests that met the fault (a parked one is logged before `since`).
    assert watched_requests(agent, kind.path, since) == cell.raised_after, agent.requests[since:]
    _check_errors(kind, cell.errors)
    assert kind.health.health.stopped, kind.health.health


async def _token_cell(kind: Kind, fault: str) -> None:
    """A token that is not valid yet: 403 until the rule is cancelled."""
    loop = asyncio.get_running_loop()
    agent = DevAgent(jitter=False, acl_default_policy="deny", management_token=ADMIN)
    async with (
        agent,
        Consul(agent.url, token=ADMIN, environ={}) as admin,
        Consul(agent.url, token=APP, environ={}) as client,
    ):
        agent.add_token(APP)
        await kind.seed(admin)
        rule = agent.faults.reject_token(APP)
        retry = _retry_permission if fault == "403-retry" else None
        since, started = len(agent.requests), loop.time()
        tracker: Tracker[Any] = Tracker(kind.source(client, retry), kind.fold)
        try:
            if retry is None:
                error = await tracker.ended(CONVERGE)
                assert isinstance(error, PermissionDenied), repr(error)
                assert "ACL not found" in str(error)
                assert APP not in str(error)
                assert watched_requests(agent, kind.path, since) == 1
                _check_errors(kind, {"PermissionDenied": (1, 1)})
                return
            valid = loop.call_later(TOKEN_VALID_AFTER, rule.cancel)
            try:
                await kind.change(admin)
                await _converge(tracker, kind, admin)
            finally:
                valid.cancel()
            elapsed = loop.time() - started
            requests = watched_requests(agent, kind.path, since)
            bound = max_error_requests(kind.backoff, TOKEN_VALID_AFTER) + success_bound(
                RATE, elapsed
            )
            assert requests <= bound, f"{requests} requests in {elapsed:.2f}s, bound {bound}"
            _check_errors(kind, {"PermissionDenied": (1, rule.hits)})
        finally:
            await tracker.aclose()
