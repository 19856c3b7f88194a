"""Fencing tokens: a downstream store refuses a write from a holder that lost its lock.

Worker A holds the lock and writes. Then A stalls (a GC pause, a partition): meanwhile its
session is invalidated, worker B takes the lock and writes. When A wakes up it still believes
it holds the lock and writes again, but the store has seen B's larger token and refuses it.

Run: ``python examples/fencing.py`` (embedded dev agent unless CONSUL_HTTP_ADDR is set).
"""

from __future__ import annotations

import asyncio

from _support import consul

from consul_streams.recipes import Lock

KEY = "examples/fenced-leader"


class StaleToken(Exception):
    """A write carried a fencing token lower than one the store has already seen."""


class FencedStore:
    """A stand-in for a database that checks the writer's fencing token on every write."""

    def __init__(self) -> None:
        self.highest = 0
        self.rows: list[str] = []

    def write(self, token: int | None, row: str) -> None:
        if token is None or token < self.highest:
            raise StaleToken(f"token {token} < {self.highest}")
        self.highest = token
        self.rows.append(row)


async def main() -> None:
    store = FencedStore()
    async with consul() as client:
        # cancel_on_loss=False stands for a holder that cannot notice in time (it is paused).
        a = Lock(client, KEY, value="a", lock_delay=0, cancel_on_loss=False)
        await a.acquire()
        store.write(a.fencing_token, "a: first write")
        print(f"a holds the lock with token {a.fencing_token} and writes", flush=True)

        if a.session is not None:
            await client.session.destroy(a.session)  # A's session is gone while A is paused

        async with Lock(client, KEY, value="b", lock_delay=0) as b:
            store.write(b.fencing_token, "b: first write")
            print(f"b holds the lock with token {b.fencing_token} and writes", flush=True)
            try:
                store.write(a.fencing_token, "a: stale write")
            except StaleToken as exc:
                print(f"the store refused a's stale write ({exc})", flush=True)
        await a.release()
        await client.kv.delete(KEY)
    print(f"rows: {store.rows}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
