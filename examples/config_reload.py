"""Hot-reload an aiohttp app's configuration from a Consul KV prefix.

The app reads ``config.value`` on every request; a burst of writes reloads it once, and an
invalid value is rejected (logged, reported) while the app keeps serving the last good config.

Run: ``python examples/config_reload.py`` (uses an embedded dev agent unless CONSUL_HTTP_ADDR
is set). It ends by itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from _support import consul
from aiohttp import web

from consul_streams.recipes import ConfigRejected, LiveConfig

PREFIX = "examples/webapp/"


@dataclass(frozen=True)
class AppConfig:
    greeting: str
    max_items: int


def parse_config(doc: dict[str, Any]) -> AppConfig:
    """The validation hook: raise (or return False) to reject a configuration."""
    return AppConfig(greeting=str(doc["greeting"]), max_items=int(doc["limits"]["max_items"]))


async def hello(request: web.Request) -> web.Response:
    config: LiveConfig[AppConfig] = request.app["config"]
    current = config.value
    return web.Response(text=f"{current.greeting} (max_items={current.max_items})")


async def get(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return await response.text()


async def main() -> None:
    async with consul() as client:
        await client.kv.put(PREFIX + "greeting", "hello")
        await client.kv.put(PREFIX + "limits/max_items", "10")
        try:
            async with LiveConfig[AppConfig](
                client, PREFIX, validate=parse_config, debounce=0.2, ready_timeout=10
            ) as config:
                rejected: asyncio.Queue[ConfigRejected] = asyncio.Queue()
                config.on_error(rejected.put_nowait)

                app = web.Application()
                app["config"] = config
                app.router.add_get("/", hello)
                runner = web.AppRunner(app)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                port = runner.addresses[0][1]
                url = f"http://127.0.0.1:{port}/"
                try:
                    async with aiohttp.ClientSession() as http:
                        print("before:", await get(http, url), flush=True)

                        # A burst: both keys change, the app reloads once, never half-applied.
                        version = config.current.version
                        await client.kv.put(PREFIX + "greeting", "bonjour")
                        await client.kv.put(PREFIX + "limits/max_items", "25")
                        snapshot = await asyncio.wait_for(config.changed(after=version), 10)
                        print(f"reloaded to version {snapshot.version}", flush=True)
                        print("after burst:", await get(http, url), flush=True)

                        # An invalid value never replaces the last good config.
                        await client.kv.put(PREFIX + "limits/max_items", "lots")
                        event = await asyncio.wait_for(rejected.get(), 10)
                        print(f"rejected: {event.error}", flush=True)
                        print("still serving:", await get(http, url), flush=True)
                finally:
                    await runner.cleanup()
        finally:
            await client.kv.delete(PREFIX, recurse=True)


if __name__ == "__main__":
    asyncio.run(main())
