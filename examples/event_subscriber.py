"""A changes-only subscriber to Consul user events.

A watch on ``client.event.items(name="deploy")`` emits each new event once, as it is fired;
events fired before the subscription started are not shown.

Run: ``python examples/event_subscriber.py`` (embedded dev agent unless CONSUL_HTTP_ADDR is set).
"""

from __future__ import annotations

import asyncio

from _support import consul

from consul_streams import Consul
from consul_streams.watch import watch


async def subscriber(client: Consul, ready: asyncio.Event, count: int) -> None:
    seen = 0
    # events="all": the first emission is the agent's buffer of past events. It is skipped,
    # and marks the moment the subscription is live; every later emission holds only events
    # fired since the previous one (the default, events="new", skips that buffer silently).
    stream = watch(client.event.items(name="deploy"), wait="10s", events="all")
    async with stream.stream() as rounds:
        async for events, _ in rounds:
            if not ready.is_set():
                ready.set()
                continue
            for event in events:
                payload = bytes(event["Payload"]).decode()
                print(f"event {event['Name']}: {payload} (ltime {event['LTime']})", flush=True)
                seen += 1
            if seen >= count:
                return


async def main() -> None:
    async with consul() as client:
        # An old event: a changes-only subscriber must not see it.
        await client.event.fire("deploy", b"old release")
        ready = asyncio.Event()
        task = asyncio.create_task(subscriber(client, ready, 3))
        await asyncio.wait_for(ready.wait(), 10)
        for version in ("v1", "v2", "v3"):
            await client.event.fire("deploy", f"release {version}".encode())
            await client.event.fire("other", b"ignored: another name")
        await asyncio.wait_for(task, 15)
        print("received 3 new events", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
