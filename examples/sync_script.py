"""A plain synchronous script: read and write keys, follow a prefix, react to changes.

No asyncio in sight: the sync client runs the engine on a thread of its own, and the watch's
callback runs on the watch's own thread.

Run: ``python examples/sync_script.py`` (uses an embedded dev agent unless CONSUL_HTTP_ADDR is
set). It ends by itself.
"""

from __future__ import annotations

import threading

from _sync_support import consul

from consul_streams import KVEntry, Meta
from consul_streams.sync import watch

PREFIX = "examples/script/"


def main() -> None:
    with consul() as client:
        client.kv.put(PREFIX + "color", b"red")
        entry, meta = client.kv.get(PREFIX + "color")
        assert entry is not None
        print(f"color is {entry['Value'].decode()} at index {meta.index}")

        blue = threading.Event()

        def changed(items: list[KVEntry], meta: Meta) -> None:
            colors = [e["Value"].decode() for e in items]
            print(f"{PREFIX}: {colors}", flush=True)
            if colors == ["blue"]:
                blue.set()

        with watch(client.kv.items(PREFIX), changed):
            client.kv.put(PREFIX + "color", b"blue")
            if not blue.wait(30):
                raise SystemExit("the change did not arrive")
        print("done")


if __name__ == "__main__":
    main()
