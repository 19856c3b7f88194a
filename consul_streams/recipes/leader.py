"""Leader election: a stream of leadership gained/lost on one lock key."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consul_streams.recipes.lock import Lock

if TYPE_CHECKING:
    from consul_streams._client import Consul

__all__ = ["Leadership", "elect"]


@dataclass(frozen=True)
class Leadership:
    """One change of leadership: ``leader`` True when gained, False when lost (with why).

    ``fencing_token`` is the term's token (see :attr:`Lock.fencing_token`), the same in the
    gained and the lost event of one term, and strictly larger in every later term.
    """

    leader: bool
    key: str
    session: str | None
    reason: str = ""
    fencing_token: int | None = None


def elect(client: Consul, key: str, **lock_options: Any) -> AsyncGenerator[Leadership, None]:
    """Contend for ``key`` forever: yield ``Leadership(leader=True)`` on winning, then
    ``Leadership(leader=False, reason=...)`` when the lock is lost, then contend again.

    ``lock_options`` go to :class:`Lock` (``ttl``, ``lock_delay``, ``value``, ``clock``...).

    A term ends (``False``) no later than the lock's lease allows: see :class:`Lock` for the
    guarantee and its assumptions.

    Note: between a ``True`` and the next ``False`` the caller is the leader; the generator
    holds the session while the caller handles an event. Closing the generator releases the
    lock and destroys the session: wrap it in ``contextlib.aclosing`` so that leaving the
    ``async for`` early closes it at once.
    """
    lock_options["cancel_on_loss"] = False
    Lock(client, key, **lock_options)  # bad options fail here, at call time
    return _elect(client, key, lock_options)


async def _elect(
    client: Consul, key: str, lock_options: dict[str, Any]
) -> AsyncGenerator[Leadership, None]:
    while True:
        lock = Lock(client, key, **lock_options)
        await lock.acquire()
        try:
            token = lock.fencing_token
            yield Leadership(True, key, lock.session, fencing_token=token)
            reason = await lock.wait_lost()
            yield Leadership(False, key, lock.session, reason, fencing_token=token)
        finally:
            await lock.release()
