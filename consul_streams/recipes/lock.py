"""Distributed locks on Consul sessions: a lock that tells its holder when it is lost.

``async with Lock(client, "service/x/leader"):`` creates a TTL session (renewed in the
background), acquires the key, runs the body, then releases the key and destroys the session.
If the session is invalidated or the key is taken away while the body runs, the body is
cancelled and :class:`LockLost` is raised from the ``async with`` (``cancel_on_loss=False``
instead only sets :attr:`Lock.lost` and leaves the body running).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consul_streams.exceptions import ConsulError
from consul_streams.recipes._held import LockLost, SessionHold, seconds
from consul_streams.recipes._lease import SessionLease
from consul_streams.typing import Duration

if TYPE_CHECKING:
    from consul_streams import Consul  # the public client: recipes build on the public API
    from consul_streams._clock import Clock
    from consul_streams._health import HealthMonitor
    from consul_streams._shapes import KVEntry

__all__ = ["LOCK_FLAGS", "Lock", "LockLost"]

#: The KV flags Consul's clients (``consul lock``, the Go API) put on lock keys.
LOCK_FLAGS = 0x2DDCCBC058A50C18


class Lock(SessionHold):
    """A session-backed lock on one KV key.

    ``ttl``: the session TTL in seconds (10 to 86400), renewed every ``ttl / 2``.
    ``lock_delay``: Consul's lock-delay for this session (seconds, 0 to 60): after the session
    is invalidated nobody can take the key for that long. ``retry_interval``: how long to wait
    before retrying when the key is free but refused (inside another session's lock-delay).
    ``value``: written to the key on acquire. ``clock``: injectable time for renewals, retries
    and the lease. ``health``: a :class:`~consul_streams.HealthMonitor` to publish to (shared
    across terms by ``elect()``); else :attr:`health` has its own.

    The session is a lease on ``clock``: the body is cancelled (and ``LockLost`` raised) no
    later than ``0.9 * ttl`` after the start of the last renewal that succeeded, whatever the
    network does; Consul keeps the session at least ``ttl`` after receiving that renewal, so a
    partitioned holder stops before anyone else can take the key, even with ``lock_delay=0``.
    This assumes the client's clock runs at most 10% slower than the agent's; an operator's
    session destroy or key delete is covered by ``lock_delay`` (keep it >= ``0.9 * ttl``).
    :attr:`fencing_token` grows with every new holder. See docs/locks.md.

    A waiter creates its session at once and renews it while it waits, however long; it
    watches the key through ``watch()`` (budget, backoff, rate limit) and destroys its session
    if it gives up.

    Note: :attr:`lost` is set (and, with ``cancel_on_loss``, the body cancelled) as soon as the
    watch on the key sees another holder or no holder, a renewal finds the session gone, or the
    lease runs out.
    """

    kind = "lock"

    def __init__(
        self,
        client: Consul,
        key: str,
        *,
        value: bytes | str = b"",
        ttl: Duration = 15.0,
        lock_delay: Duration = 15.0,
        behavior: str = "release",
        session_name: str | None = None,
        retry_interval: Duration = 1.0,
        cancel_on_loss: bool = True,
        clock: Clock | None = None,
        wait: Duration = "5m",
        health: HealthMonitor | None = None,
    ) -> None:
        super().__init__(
            client,
            key,
            ttl=ttl,
            lock_delay=lock_delay,
            behavior=behavior,
            session_name=session_name,
            cancel_on_loss=cancel_on_loss,
            clock=clock,
            wait=wait,
            health=health,
        )
        self._retry = seconds(retry_interval, "retry_interval")
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    async def _acquire_with(self, session: str) -> bool:
        return await self.client.kv.acquire(self.key, session, self._value, flags=LOCK_FLAGS)

    async def _read(self) -> tuple[bool, KVEntry | None]:
        """A one-shot read of the key: ``(False, None)`` after a retriable failure (and a pause)."""
        try:
            entry, _ = await self.client.kv.get(self.key)
        except ConsulError as exc:
            if not exc.retriable:
                self._health.failed(exc, retrying=False)
                raise
            self._health.failed(exc)
            await self._clock.sleep(self._retry)
            return False, None
        return True, entry

    async def _fence(self, lease: SessionLease) -> bool:
        """After a successful acquire: read the fencing token; ``False`` if no longer ours."""
        while not lease.expired.is_set():
            ok, entry = await self._read()
            if not ok:
                continue
            if entry is None or entry.get("Session") != lease.session:
                return False
            self._token = int(entry["ModifyIndex"])
            return True
        return False

    async def _take(self, lease: SessionLease) -> None:
        from consul_streams.watch import watch

        await self._session(lease)
        held_by_other = False
        stream = watch(
            self.client.kv.get(self.key), wait=self._wait, clock=self._clock, health=self._health
        )
        async with stream.stream() as rounds:
            async for first, _ in rounds:
                entry, fresh = first, True
                while True:
                    if not fresh:
                        fresh, entry = await self._read()
                        if not fresh:
                            continue
                    fresh = False
                    holder = entry.get("Session") if entry is not None else None
                    if holder and holder == lease.session:
                        if lease.expired.is_set():
                            # Our acquire went through but the lease is gone: give it back.
                            await self._session(lease)
                            break
                        if await self._fence(lease):
                            return
                        continue
                    if holder:
                        held_by_other = True
                        break  # wait for the key to change
                    if entry is None and held_by_other and self._lock_delay > 0:
                        # Deleted under a holder that may not have noticed yet: Consul sets no
                        # lock-delay for a delete, so wait ours before taking the key.
                        await self._clock.sleep(self._lock_delay)
                    held_by_other = False
                    if await self._try(lease, self._acquire_with) and await self._fence(lease):
                        return
                    # Refused while free: another session's lock-delay window (Consul does not
                    # say when it ends), or we lost a race: look again after retry_interval.
                    await self._clock.sleep(self._retry)

    async def _watch(self, session: str) -> None:
        from consul_streams.watch import watch

        stream = watch(
            self.client.kv.get(self.key), wait=self._wait, clock=self._clock, health=self._health
        )
        async with stream.stream() as rounds:
            async for entry, _ in rounds:
                if entry is None:
                    self._mark_lost("the key was deleted")
                    return
                holder = entry.get("Session")
                if holder == session:
                    continue
                if holder:
                    self._mark_lost("another session holds the key")
                elif await self._session_gone(session):
                    self._mark_lost("the session was invalidated")
                else:
                    self._mark_lost("the key was released")
                return

    async def _give_back(self, session: str) -> None:
        await self.client.kv.release(self.key, session, self._value, flags=LOCK_FLAGS)
