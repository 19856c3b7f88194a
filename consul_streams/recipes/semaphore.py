"""A distributed semaphore: at most ``limit`` holders of a KV prefix at once.

It follows Consul's documented semaphore recipe and the layout of Consul's Go client, so both
can share one semaphore: each contender holds ``<prefix><session>`` with its session, and the
``<prefix>.lock`` key holds ``{"Limit": N, "Holders": {session: true, ...}}``, updated with
check-and-set. Holders whose contender key lost its session are pruned by the next contender.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from consul_streams._parse import parse_int
from consul_streams.endpoints.kv import check_key
from consul_streams.exceptions import ConsulError, SemaphoreConflict
from consul_streams.recipes._held import SessionHold
from consul_streams.recipes._lease import SessionLease
from consul_streams.typing import Duration

if TYPE_CHECKING:
    from consul_streams import Consul  # the public client: recipes build on the public API
    from consul_streams._clock import Clock
    from consul_streams._health import HealthMonitor
    from consul_streams._shapes import KVEntry

__all__ = ["SEMAPHORE_FLAGS", "Semaphore", "SemaphoreConflict"]

#: The KV flags Consul's clients put on semaphore keys (to tell them from lock keys).
SEMAPHORE_FLAGS = 0xE0F69A2BAA414DE0
_LOCK_KEY = ".lock"


def _check_limit(limit: object) -> int:
    return parse_int(limit, "limit", minimum=1)


class Semaphore(SessionHold):
    """Up to ``limit`` concurrent holders of ``prefix``.

    ``async with Semaphore(client, "service/x/workers/", 3):`` waits for a slot, holds it while
    the body runs (the session is renewed in the background) and frees it on exit. As with
    :class:`~consul_streams.recipes.Lock`, losing the slot (session invalidated, or our entry
    dropped from the holders) sets :attr:`lost` and cancels the body, raising ``LockLost``.

    Note: every contender must use the same ``limit``; a mismatch raises
    :class:`SemaphoreConflict` from ``acquire``.
    """

    kind = "semaphore"

    def __init__(
        self,
        client: Consul,
        prefix: str,
        limit: int,
        *,
        value: bytes | str = b"",
        ttl: Duration = 15.0,
        lock_delay: Duration = 0.0,
        session_name: str | None = None,
        cancel_on_loss: bool = True,
        clock: Clock | None = None,
        wait: Duration = "5m",
        health: HealthMonitor | None = None,
    ) -> None:
        # The KV endpoint's key rules: a bad prefix fails here, before any session exists.
        check_key(prefix, "prefix")
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.limit = _check_limit(limit)
        super().__init__(
            client,
            self.prefix + _LOCK_KEY,
            ttl=ttl,
            lock_delay=lock_delay,
            behavior="delete",  # a dead contender's key disappears with its session
            session_name=session_name,
            cancel_on_loss=cancel_on_loss,
            clock=clock,
            wait=wait,
            health=health,
        )
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    def _state(self, entries: list[KVEntry]) -> tuple[KVEntry | None, dict[str, Any], set[str]]:
        """The ``.lock`` entry, its document, and the sessions still holding a contender key."""
        lock_entry = next((e for e in entries if e["Key"] == self.key), None)
        alive = {
            e["Key"][len(self.prefix) :]
            for e in entries
            if e["Key"] != self.key and e.get("Session") == e["Key"][len(self.prefix) :]
        }
        if lock_entry is None:
            return None, {"Limit": self.limit, "Holders": {}}, alive
        try:
            doc = json.loads(lock_entry["Value"] or b"{}")
            limit, holders = doc["Limit"], doc.get("Holders") or {}
            if not isinstance(holders, dict) or not isinstance(limit, int):
                raise TypeError("bad shape")
        except (ValueError, KeyError, TypeError) as exc:
            raise SemaphoreConflict(f"{self.key!r} does not hold a semaphore document") from exc
        if limit != self.limit:
            raise SemaphoreConflict(
                f"semaphore {self.prefix!r} has limit {limit}, this contender uses {self.limit}"
            )
        return lock_entry, {"Limit": limit, "Holders": dict(holders)}, alive

    async def _write_state(self, lock_entry: KVEntry | None, doc: dict[str, Any]) -> bool:
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        index = lock_entry["ModifyIndex"] if lock_entry is not None else 0
        return await self.client.kv.cas(self.key, body, index=index, flags=SEMAPHORE_FLAGS)

    async def _read(self) -> list[KVEntry] | None:
        """A one-shot read of the prefix; ``None`` after a retriable failure (and a pause)."""
        try:
            entries, _ = await self.client.kv.items(self.prefix)
        except ConsulError as exc:
            if not exc.retriable:
                self._health.failed(exc, retrying=False)
                raise
            self._health.failed(exc)
            await self._clock.sleep(self._retry)
            return None
        return entries

    async def _contend(self, session: str) -> bool:
        contender = self.prefix + session
        return await self.client.kv.acquire(contender, session, self._value, flags=SEMAPHORE_FLAGS)

    async def _claim(self, lock_entry: KVEntry | None, doc: dict[str, Any], _: str) -> bool:
        return await self._write_state(lock_entry, doc)

    async def _take(self, lease: SessionLease) -> None:
        from consul_streams.watch import watch

        await self._session(lease)
        vanished: dict[str, float] = {}
        stream = watch(
            self.client.kv.items(self.prefix),
            wait=self._wait,
            clock=self._clock,
            health=self._health,
        )
        async with stream.stream() as rounds:
            async for first, _ in rounds:
                entries: list[KVEntry] | None = first
                while True:
                    if entries is None:
                        entries = await self._read()
                        continue
                    lock_entry, doc, alive = self._state(entries)
                    session = lease.session
                    if session is None or lease.expired.is_set() or session not in alive:
                        # No contender key yet (or a new session): create it, then look again.
                        # A refusal means the session is in a lock-delay or gone: retry later.
                        if not await self._try(lease, self._contend):
                            await self._clock.sleep(self._retry)
                        entries = None
                        continue
                    holders = {s: True for s in doc["Holders"] if s in alive}
                    if session in holders:
                        return
                    # A holder whose contender key vanished (session destroyed or expired)
                    # may not know yet, or may be partitioned: Consul's lock-delay does not
                    # cover our key, so its slot counts as taken for lock_delay more.
                    now = self._clock.now()
                    for back in set(vanished) & alive:
                        del vanished[back]
                    pending: list[float] = []
                    for gone in set(doc["Holders"]) - set(holders):
                        left = vanished.setdefault(gone, now) + self._lock_delay - now
                        if left > 0:
                            holders[gone] = True
                            pending.append(left)
                    if len(holders) >= self.limit:
                        if pending:
                            await self._clock.sleep(min(pending))
                            entries = None
                            continue
                        break  # full: wait for the prefix to change
                    holders[session] = True
                    doc = {"Limit": self.limit, "Holders": holders}
                    if await self._try(lease, functools.partial(self._claim, lock_entry, doc)):
                        return
                    entries = None  # another contender wrote first: look again

    async def _watch(self, session: str) -> None:
        from consul_streams.watch import watch

        stream = watch(
            self.client.kv.items(self.prefix),
            wait=self._wait,
            clock=self._clock,
            health=self._health,
        )
        async with stream.stream() as rounds:
            async for entries, _ in rounds:
                try:
                    _, doc, alive = self._state(entries)
                except SemaphoreConflict as exc:
                    self._mark_lost(str(exc))
                    return
                if session not in alive:
                    gone = await self._session_gone(session)
                    self._mark_lost(
                        "the session was invalidated" if gone else "the contender key was removed"
                    )
                    return
                if session not in doc["Holders"]:
                    self._mark_lost("this session was dropped from the holders")
                    return

    async def _give_back(self, session: str) -> None:
        # Take ourselves out of the holders (check-and-set, retried on races), then drop the
        # contender key; destroying the session (done by release) would delete it as well.
        while True:
            entries, _ = await self.client.kv.items(self.prefix)
            try:
                lock_entry, doc, _ = self._state(entries)
            except SemaphoreConflict:
                break
            if lock_entry is None or session not in doc["Holders"]:
                break
            del doc["Holders"][session]
            if await self._write_state(lock_entry, doc):
                break
        await self.client.kv.delete(self.prefix + session)
