"""A watch with one consumer runs its rounds in that consumer's task (#13): no poll task, no
hand-over per item; a second consumer, a close or a fatal error change that cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_watch_helpers import FakeTransport, Reply, asking, fast, kv_query, nxt, within

from consul_streams import _share
from consul_streams._clock import VirtualClock
from consul_streams.exceptions import ClientClosed, PermissionDenied

pytestmark = pytest.mark.skipif(
    not _share.INLINE, reason="a poll runs in its consumer's task only on Python >= 3.11"
)


def _cancel_requests(task: asyncio.Task[Any]) -> int:
    """``task.cancelling()`` (Python >= 3.11, as every test here; mypy checks as 3.10)."""
    return int(getattr(task, "cancelling")())  # noqa: B009


class Senders:
    """A FakeTransport handler that records which task sent each request."""

    def __init__(self, t: FakeTransport) -> None:
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()
        self.sent = asyncio.Event()
        t._handler = self.handle

    async def handle(self, request: Any) -> Reply:
        self.tasks.append(asyncio.current_task())
        self.sent.set()
        return await self.replies.get()

    async def wait_sent(self, count: int) -> None:
        while len(self.tasks) < count:
            self.sent.clear()
            await self.sent.wait()


CLOCK = VirtualClock()  # one clock: watches of one query with the same settings share a poll


async def _parked(t: FakeTransport) -> tuple[Any, Senders, asyncio.Task[Any]]:
    """An iteration that holds its first item and whose consumer task is in its second round."""
    senders = Senders(t)
    senders.replies.put_nowait(Reply("a", index=5))
    it = fast(kv_query(t), clock=CLOCK).__aiter__()
    assert (await nxt(it))[0] == "a"
    consumer = asyncio.ensure_future(it.__anext__())
    await within(senders.wait_sent(2))
    return it, senders, consumer


async def test_each_round_runs_in_the_consumers_own_task_and_the_engine_owns_none() -> None:
    t = FakeTransport()
    it, senders, consumer = await _parked(t)
    assert senders.tasks[1] is consumer  # the answer resumes the task that asked for it
    assert t.engine.tasks == 0  # nothing polls unless the consumer asks
    assert t.engine.polls == 1
    senders.replies.put_nowait(Reply("b", index=6))
    assert (await within(consumer))[0] == "b"
    assert t.params(1) == {"index": "5", "wait": "300000ms"}
    assert t.inflight == 0  # between two asks, no request is in flight
    await it.aclose()


async def test_a_second_consumer_starts_the_poll_task_which_takes_over_after_the_round() -> None:
    t = FakeTransport()
    it, senders, first = await _parked(t)
    it2 = fast(kv_query(t), clock=CLOCK).__aiter__()  # the same query and settings: the same poll
    late = await nxt(it2)
    assert late[0] == "a"  # the current value, at once
    second = asking(it2)
    await asyncio.sleep(0)
    assert t.engine.tasks == 1  # the hub's poll task, waiting for the round in flight
    assert len(senders.tasks) == 2  # it does not start a round of its own meanwhile
    senders.replies.put_nowait(Reply("b", index=6))
    assert (await within(first))[0] == "b"
    assert (await within(second))[0] == "b"
    # The poll task sends the next round; both consumers now wait on it.
    await within(senders.wait_sent(3))
    assert senders.tasks[2] not in (first, second)
    assert t.peak_inflight == 1
    assert t.params(2)["index"] == "6"
    again, again2 = asking(it), asking(it2)
    senders.replies.put_nowait(Reply("c", index=7))
    assert (await within(again))[0] == "c"
    assert (await within(again2))[0] == "c"
    await it.aclose()
    await it2.aclose()
    assert t.engine.tasks == 0


async def test_closing_the_client_aborts_the_round_and_the_consumer_gets_client_closed() -> None:
    t = FakeTransport()
    _it, _senders, consumer = await _parked(t)
    await within(t.engine.aclose())
    # aclose() returned once the round had ended: its request is aborted, nothing in flight.
    assert t.cancellations == 1
    assert t.inflight == 0
    with pytest.raises(ClientClosed):
        await within(consumer)
    # The hub's cancellation was taken back: the consumer's task ends with the error, and
    # is not left with a pending cancel request.
    assert not consumer.cancelled()
    assert _cancel_requests(consumer) == 0


async def test_the_consumers_own_cancellation_is_never_taken_back_by_the_hub() -> None:
    t = FakeTransport()
    _it, _senders, consumer = await _parked(t)

    async def cancel_then_close() -> None:
        consumer.cancel()  # e.g. the application shutting down...
        await t.engine.aclose()  # ...and the client closing in the same step

    await within(cancel_then_close())
    await asyncio.wait({consumer}, timeout=2.0)
    assert consumer.cancelled()
    assert t.inflight == 0


async def test_aclose_from_another_task_ends_the_iteration_and_aborts_its_request() -> None:
    t = FakeTransport()
    it, _senders, consumer = await _parked(t)
    await within(it.aclose())
    assert t.cancellations == 1
    assert t.inflight == 0  # aclose() waited until the round had ended
    with pytest.raises(StopAsyncIteration):
        await within(consumer)
    assert t.engine.polls == 0


async def test_asking_twice_at_once_is_refused_while_a_round_is_in_flight() -> None:
    t = FakeTransport()
    it, senders, consumer = await _parked(t)
    with pytest.raises(RuntimeError, match="already waiting"):
        await it.__anext__()
    assert len(senders.tasks) == 2  # the refused ask sent nothing
    senders.replies.put_nowait(Reply("b", index=6))
    assert (await within(consumer))[0] == "b"  # the round in flight is unharmed
    await it.aclose()


async def test_a_fatal_error_in_the_consumers_round_reaches_a_consumer_who_joined() -> None:
    t = FakeTransport()
    _it, senders, first = await _parked(t)
    it2 = fast(kv_query(t), clock=CLOCK).__aiter__()
    await nxt(it2)
    second = asking(it2)
    denied = PermissionDenied(403, "Permission denied", method="GET")
    senders.replies.put_nowait(Reply(error=denied))
    with pytest.raises(PermissionDenied):
        await within(first)
    with pytest.raises(PermissionDenied):
        await within(second)
    assert len(senders.tasks) == 2  # the poll task that waited to take over never polled
    assert t.engine.polls == 0
    assert t.engine.tasks == 0


async def _holding_the_only_slot() -> tuple[FakeTransport, Any, asyncio.Task[Any], Any]:
    """A single consumer whose round (in its own task) holds the only long-poll lease."""
    t = FakeTransport(max_connections=2)  # one long-poll slot
    it, _senders, consumer = await _parked(t)
    budget = t.engine.budget
    assert budget is not None
    (lease,) = list(budget._held)
    assert lease.task is consumer
    return t, it, consumer, lease


def _preempt(lease: Any) -> None:
    """What the budget does to the lease held longest when a watch waits for a slot."""
    lease.preempted = True
    lease.task.cancel()


async def test_a_preemption_re_sends_the_round_and_never_cancels_the_consumer() -> None:
    t, it, consumer, lease = await _holding_the_only_slot()
    _preempt(lease)
    await within(t.wait_requests(3))
    assert t.params(2) == t.params(1)  # the same index, sent again: not an error
    assert not consumer.done()
    assert _cancel_requests(consumer) == 0
    assert it.stats.preempted == 1
    assert it.stats.errors == {}
    await it.aclose()
    with pytest.raises(StopAsyncIteration):
        await within(consumer)


async def test_a_preemption_racing_the_clients_close_ends_with_client_closed() -> None:
    t, _it, consumer, lease = await _holding_the_only_slot()

    async def preempt_then_close() -> None:
        _preempt(lease)
        await t.engine.aclose()

    await within(preempt_then_close())
    with pytest.raises(ClientClosed):
        await within(consumer)
    assert _cancel_requests(consumer) == 0  # both cancel requests were taken back
    assert len(t.requests) == 2  # the preempted round was not sent again
