"""consul_streams uses aiostream's public API only, so a new aiostream release cannot break it
behind our back (``aiostream.aiter_utils.AsyncIteratorContext`` keeps ``_state``,
``_RUNNING``, ``_FINISHED``, ``_STANDBY`` and ``_aiterator`` private)."""

from __future__ import annotations

import ast
import asyncio
import warnings
from pathlib import Path

import consul_streams
from consul_streams import Consul, Response, watch
from consul_streams.testing import MockTransport

PRIVATE = {"_state", "_RUNNING", "_FINISHED", "_STANDBY", "_aiterator", "_generator"}


def test_no_module_touches_aiostreams_private_state() -> None:
    root = Path(consul_streams.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "aiostream" not in source:
            continue  # only modules that use aiostream can touch its state
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
                found.append(f"{path.relative_to(root)}:{node.lineno} .{node.attr}")
    assert not found


async def test_plain_async_for_over_a_watch_does_not_warn() -> None:
    """aiostream warns when a streamer is iterated outside its context; a watch enters its own
    (through the public ``__aenter__``) on the first ``anext()``."""
    mock = MockTransport(lambda request: Response(200, {"X-Consul-Index": "3"}, b"[]"))
    async with Consul(transport=mock, environ={}) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async for value, meta in watch(client.kv.items("a/")):
                assert (value, meta.index) == ([], 3)
                break
        await asyncio.sleep(0)
