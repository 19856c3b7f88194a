"""Raw-HTTP helpers for the dev agent's conformance tests (plain aiohttp, not our client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest_asyncio
from multidict import CIMultiDictProxy

from consul_streams.testing import DevAgent


@dataclass
class Reply:
    """One raw HTTP answer."""

    status: int
    headers: CIMultiDictProxy[str]
    raw_header_names: list[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def index(self) -> int:
        return int(self.headers["X-Consul-Index"])


class Http:
    """Sends raw requests to one dev agent."""

    def __init__(self, agent: DevAgent, session: aiohttp.ClientSession) -> None:
        self.agent = agent
        self.session = session

    async def __call__(
        self,
        method: str,
        path: str,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        check_index: bool = True,
    ) -> Reply:
        async with self.session.request(
            method,
            self.agent.url + path,
            data=data,
            headers=dict(headers or {}),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            body = await resp.read()
            names = [name.decode() for name, _ in resp.raw_headers]
            reply = Reply(resp.status, resp.headers, names, body)
        if check_index and "X-Consul-Index" in reply.headers:
            # Vector 18: every index the agent sends is >= 1.
            assert reply.index >= 1, reply.headers
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self("GET", path, **kw)

    async def put(self, path: str, data: bytes | str | None = None, **kw: Any) -> Reply:
        return await self("PUT", path, data, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self("DELETE", path, **kw)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False, node_name="dev") as dev:
        yield dev


@pytest_asyncio.fixture
async def http(agent: DevAgent) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(agent, session)
