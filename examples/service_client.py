"""An HTTP client that follows a service's healthy instances and balances over them.

Two small backends register as ``example-web`` with TTL checks; the client picks an instance
per request (weighted round robin). When one backend's check turns critical it leaves the
picker at once, and every later request goes to the other.

Run: ``python examples/service_client.py`` (embedded dev agent unless CONSUL_HTTP_ADDR is set).
"""

from __future__ import annotations

import asyncio

import aiohttp
from _support import consul
from aiohttp import web

from consul_streams.recipes import ServiceInstances

SERVICE = "example-web"


async def start_backend(name: str) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def main() -> None:
    backends = [await start_backend(f"backend-{i}") for i in (1, 2)]
    async with consul() as client, aiohttp.ClientSession() as http:
        try:
            for i, (_, port) in enumerate(backends, 1):
                await client.agent.service_register(
                    SERVICE,
                    service_id=f"{SERVICE}-{i}",
                    address="127.0.0.1",
                    port=port,
                    check={"CheckID": f"{SERVICE}-{i}-ttl", "Name": "alive", "TTL": "60s"},
                )
                await client.agent.check_pass(f"{SERVICE}-{i}-ttl")

            async with ServiceInstances(client, SERVICE) as web_service:
                while len(web_service.healthy) < 2:
                    await asyncio.wait_for(web_service.updated(), 10)
                for _ in range(4):
                    instance = web_service.pick()
                    async with http.get(f"http://{instance.url_host}/") as response:
                        print("answered by", await response.text(), flush=True)

                await client.agent.check_fail(f"{SERVICE}-1-ttl", "simulated failure")
                while len(web_service.healthy) != 1:
                    await asyncio.wait_for(web_service.updated(), 10)
                left = len(web_service.healthy)
                print(f"{SERVICE}-1 left the picker ({left} healthy)", flush=True)
                for _ in range(2):
                    instance = web_service.pick()
                    async with http.get(f"http://{instance.url_host}/") as response:
                        print("answered by", await response.text(), flush=True)
        finally:
            for i in (1, 2):
                await client.agent.service_deregister(f"{SERVICE}-{i}")
            for runner, _ in backends:
                await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
