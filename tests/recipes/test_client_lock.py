"""``Consul.lock`` is the short way to a :class:`consul_streams.recipes.Lock`."""

from __future__ import annotations

from consul_streams import Consul
from consul_streams.recipes import Lock


async def test_client_lock_holds_the_key_while_inside_and_frees_it_on_exit(
    consul_client: Consul,
) -> None:
    lock = consul_client.lock("service/x/leader", ttl=15)
    assert isinstance(lock, Lock)
    async with lock:
        entry, _ = await consul_client.kv.get("service/x/leader")
        assert entry is not None
        assert entry.get("Session")
    entry, _ = await consul_client.kv.get("service/x/leader")
    assert entry is None or not entry.get("Session")
