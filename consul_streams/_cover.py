"""Prefix cover: watch many single-key KV reads through one recursive read of their prefix.

When there are more watches than long-poll slots, the budget used to rotate the slots
(preempting the longest-held long-poll every ``min_hold``), which costs CPU at the client and
the agent even while nothing changes. A single-key KV read declares a
:class:`~consul_streams._query.KeyCover`; when such a poll has to wait for a slot it waits
*passively* (it causes no preemption), and this module watches every passive key of one group
(same datacenter and consistency) with one blocking recursive read of their longest common
prefix, holding one slot.

Each answer is a snapshot ``{key: ModifyIndex}``. A waiting poll whose key is newer than the
index it last read (Consul answers a single-key read with the entry's ``ModifyIndex``, or the
table index when it is missing: ``kvs_endpoint.go`` ``KVS.Get``), or that held a value while
the key is now absent, is *nudged*: it reads its key once without a slot, emits as usual and
queues again. A change after the snapshot makes the recursive read return; a change before it
is in the snapshot, which is also checked when a poll starts waiting, so none is missed.
Nothing is timed and nothing is sent while nothing changes.

If the recursive read fails (an ACL token that may read the keys but not list the prefix, a
transport error), the group's waiting polls become ordinary waiters (rotation resumes) and the
group is retried after a backoff delay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, TypedDict

import msgspec

from consul_streams._budget import Lease, LongPollBudget
from consul_streams._engine import Backoff
from consul_streams._query import KeyCover, Query, Response
from consul_streams._rules import DEFAULT_WAIT
from consul_streams._tasks import TaskOwner
from consul_streams.exceptions import ConsulError, DecodeError

if TYPE_CHECKING:
    from consul_streams._engine import Poller

__all__ = ["PrefixCover"]

log = logging.getLogger("consul_streams.watch")

Waiter = asyncio.Future["Lease | None"]


class _Stamp(TypedDict):
    Key: str
    ModifyIndex: int


#: Only the two fields the cover compares: the values (base64) are skipped, never decoded.
_STAMPS = msgspec.json.Decoder(list[_Stamp])


def _modify_indexes(response: Response) -> dict[str, int]:
    """``{Key: ModifyIndex}`` of a recursive KV read (404: no key); values are not decoded."""
    if response.status == 404:
        return {}
    try:
        entries = _STAMPS.decode(response.body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise DecodeError(
            f"expected a JSON array of KV entries: {exc}", method=response.method, url=response.url
        ) from None
    return {e["Key"]: e["ModifyIndex"] for e in entries}


def common_prefix(keys: list[str]) -> str:
    """The longest string every key starts with."""
    low, high = min(keys), max(keys)  # the common prefix of the extremes is everyone's
    n = 0
    while n < min(len(low), len(high)) and low[n] == high[n]:
        n += 1
    return low[:n]


class _Group:
    """The passive waiters of one (transport, datacenter, consistency) group and their read."""

    def __init__(self, cover: KeyCover, query: Query[Any]) -> None:
        self.cover = cover
        self.query = query  # a member's query: its transport and timeouts
        self.waiters: dict[Waiter, Poller] = {}
        self.prefix: str | None = None
        self.index = 0
        self.snapshot: dict[str, int] | None = None
        #: counts snapshots (indexes can go back; this never does)
        self.round = 0
        #: the snapshot round each poll was last nudged for (one nudge per poll per snapshot)
        self.nudged: dict[Poller, int] = {}
        self.task: asyncio.Task[None] | None = None
        #: set before this cover cancels the read itself (restart with a new prefix, or stop)
        self.interrupted = False
        self.failures = 0
        self.disabled_until: float | None = None

    def live(self) -> list[tuple[Waiter, Poller]]:
        for future in [f for f in self.waiters if f.done()]:
            poller = self.waiters.pop(future)
            self.nudged.pop(poller, None)
        return list(self.waiters.items())


class PrefixCover:
    """Serves the budget's passive waiters (see the module docstring); one per engine."""

    def __init__(self, budget: LongPollBudget, tasks: TaskOwner, *, wait: float = DEFAULT_WAIT):
        self._budget = budget
        self._tasks = tasks
        self._wait = wait
        self._groups: dict[Hashable, _Group] = {}
        self._backoff = Backoff()
        self._rng = random.Random()
        #: recursive reads sent (tests and benchmarks read it)
        self.reads = 0
        self.nudges = 0
        budget.on_passive = self._join

    def accepts(self, query: Query[Any]) -> bool:
        """Whether a poll of ``query`` may wait passively (its group is not backing off)."""
        if query.cover is None:
            return False
        group = self._groups.get(self._key(query, query.cover))
        if group is None or group.disabled_until is None:
            return True
        return self._budget.clock.now() >= group.disabled_until

    @staticmethod
    def _key(query: Query[Any], cover: KeyCover) -> Hashable:
        return (query.transport.identity, cover.group)

    def _join(self, future: Waiter, tag: Any) -> None:
        poller: Poller = tag
        query = poller.query
        cover = query.cover
        if cover is None:  # pragma: no cover (pollers only wait passively when covered)
            self._budget.activate(future)
            return
        key = self._key(query, cover)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(cover, query)
        group.waiters[future] = poller
        future.add_done_callback(lambda f: self._left(group, f))
        if group.prefix is not None and cover.key.startswith(group.prefix):
            if group.snapshot is not None:
                self._check(group, future, poller)
        elif group.task is not None and not group.task.done():
            # A key outside the prefix being read: restart the read with a shorter prefix.
            self._interrupt(group)
        if group.task is None or group.task.done():
            self._start(group)

    def _start(self, group: _Group) -> None:
        group.interrupted = False
        task = group.task = self._tasks.spawn(
            self._run(group), name=f"consul_streams.prefix cover {group.query!r}"
        )
        task.add_done_callback(lambda t: self._ended(group, t))

    def _ended(self, group: _Group, task: asyncio.Task[None]) -> None:
        """The read loop ended (its waiters left, a failure, an interrupt, even one before it
        started): start it again if polls still wait for it."""
        if group.task is not task:
            return
        group.task = None
        if group.live() and not self._tasks.closed:  # (a failure cleared the waiters)
            self._start(group)

    def _left(self, group: _Group, future: Waiter) -> None:
        """A waiter got a slot or its poll stopped: stop reading when nobody is left."""
        if not future.cancelled() and future.result() is None:
            return  # nudged: it reads its key and comes back
        if not group.live():
            self._interrupt(group)

    @staticmethod
    def _interrupt(group: _Group) -> None:
        task = group.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            group.interrupted = True
            task.cancel()

    def _check(self, group: _Group, future: Waiter, poller: Poller) -> None:
        snapshot = group.snapshot
        if snapshot is None or future.done():
            return
        key, index, exists = poller.cover_state()
        modified = snapshot.get(key)
        changed = (
            (modified is not None and modified > index)
            or (modified is None and exists)
            # An index above the prefix's own: read before the indexes went back (snapshot
            # restore, agent restart), so newer writes would not look newer. (Or a missing
            # key's table index: one spare read per snapshot at most.)
            or index > group.index > 0
        )
        if changed and group.nudged.get(poller) != group.round:
            group.nudged[poller] = group.round
            self.nudges += 1
            self._budget.nudge(future)

    async def _run(self, group: _Group) -> None:
        lease: Lease | None = None
        try:
            while True:
                live = group.live()
                if not live:
                    return
                prefix = common_prefix([p.query.cover.key for _f, p in live if p.query.cover])
                if prefix != group.prefix:
                    group.prefix, group.index, group.snapshot = prefix, 0, None
                try:
                    if group.index > 0 and lease is None:
                        lease = await self._budget.acquire(urgent=True)
                    snapshot, index = await self._read(group, prefix)
                except asyncio.CancelledError:
                    if lease is not None and lease.preempted:
                        lease.release()
                        lease = None
                    elif not group.interrupted:
                        raise
                    group.interrupted = False
                    task = asyncio.current_task()
                    uncancel = getattr(task, "uncancel", None)
                    if uncancel is not None:
                        uncancel()
                    continue
                except ConsulError as exc:
                    self._fail(group, exc)
                    return
                group.failures, group.disabled_until = 0, None
                if index == 0:
                    # The index went back (snapshot restore, agent restart): every index the
                    # waiting polls hold may now be above their key's, so a new write would
                    # not look newer. Let each re-read its key (and reset its index).
                    for future, _poller in group.live():
                        self.nudges += 1
                        self._budget.nudge(future)
                group.snapshot, group.index = snapshot, index
                group.round += 1
                for future, poller in group.live():
                    self._check(group, future, poller)
        finally:
            if lease is not None:
                lease.release()

    async def _read(self, group: _Group, prefix: str) -> tuple[dict[str, int], int]:
        request = group.cover.prefix_request(prefix, group.cover.group)
        query = Query(
            group.query.transport, request, _modify_indexes, ok_statuses=frozenset({200, 404})
        )
        self.reads += 1
        snapshot, meta = await query.fetch(index=group.index, wait=self._wait)
        new = max(meta.index, 1)
        # A lower index (restore, restart): read again without blocking.
        return snapshot, new if new >= group.index else 0

    def _fail(self, group: _Group, exc: ConsulError) -> None:
        """The prefix read failed: rotation serves the group's waiters for a while."""
        delay = self._backoff.delay(group.failures, self._rng)
        group.failures += 1
        group.disabled_until = self._budget.clock.now() + max(delay, self._budget.min_hold)
        group.prefix, group.index, group.snapshot = None, 0, None
        log.debug("prefix cover of %r failed (%s): rotating for %.1fs", group.query, exc, delay)
        for future, _poller in group.live():
            self._budget.activate(future)
        group.waiters.clear()
        group.nudged.clear()
