"""Distributed locks on Consul sessions: a lock that tells its holder when it is lost.

``async with Lock(client, "service/x/leader"):`` creates a TTL session (renewed in the
background), acquires the key, runs the body, then releases the key and destroys the session.
If the session is invalidated or the key is taken away while the body runs, the body is
cancelled and :class:`LockLost` is raised from the ``async with`` (``cancel_on_loss=False``
instead only sets :attr:`Lock.lost` and leaves the body running).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consul_streams.recipes._held import LockLost, SessionHold, seconds
from consul_streams.typing import Duration

if TYPE_CHECKING:
    from consul_streams import Consul  # the public client: recipes build on the public API
    from consul_streams._clock import Clock

__all__ = ["LOCK_FLAGS", "Lock", "LockLost"]

#: The KV flags Consul's clients (``consul lock``, the Go API) put on lock keys.
LOCK_FLAGS = 0x2DDCCBC058A50C18


class Lock(SessionHold):
    """A session-backed lock on one KV key.

    ``ttl``: the session TTL in seconds (10 to 86400), renewed every ``ttl / 2``.
    ``lock_delay``: Consul's lock-delay for this session (seconds, 0 to 60): after the session
    is invalidated nobody can take the key for that long. ``retry_interval``: how long to wait
    before retrying when the key is free but refused (inside another session's lock-delay).
    ``value``: written to the key on acquire. ``clock``: injectable time for renewals/retries.

    Note: :attr:`lost` is set (and, with ``cancel_on_loss``, the body cancelled) as soon as the
    watch on the key sees another holder or no holder, or a renewal finds the session gone.
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
        )
        self._retry = seconds(retry_interval, "retry_interval")
        self._value = value.encode() if isinstance(value, str) else bytes(value)

    async def _take(self, session: str) -> None:
        while not await self.client.kv.acquire(self.key, session, self._value, flags=LOCK_FLAGS):
            entry, meta = await self.client.kv.get(self.key)
            if entry is None or not entry.get("Session"):
                # Free but refused: another session's lock-delay window. Consul does not say
                # when it ends, so retry at retry_interval.
                await self._clock.sleep(self._retry)
                continue
            # Held by someone else: block until the key changes.
            await self.client.kv.get(self.key).fetch(index=meta.index, wait=self._wait_s)

    async def _watch(self, session: str) -> None:
        from consul_streams.watch import watch

        stream = watch(self.client.kv.get(self.key), wait=self._wait, clock=self._clock)
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
