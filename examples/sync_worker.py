"""A Celery-style worker loop, no Celery needed: jobs from a KV prefix, settings live.

A watch on ``examples/jobs/queue/`` hands new job keys to a ``queue.Queue`` (from the watch's
callback thread); the worker loop takes them one by one, reads its batch size from a live
config on every job, does the work while holding a lock on the job (so two workers never run
it twice, and a lost lock is noticed before the result is written), then deletes the key.
A ``stop`` key ends the loop.

Run: ``python examples/sync_worker.py`` (uses an embedded dev agent unless CONSUL_HTTP_ADDR is
set). It ends by itself.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping
from typing import Any

from _sync_support import consul

from consul_streams import KVEntry, Meta
from consul_streams.sync import Consul, LiveConfig, watch

QUEUE = "examples/jobs/queue/"
SETTINGS = "examples/jobs/settings/"


def run_worker(client: Consul, name: str) -> int:
    """Process jobs until a ``stop`` job arrives; returns how many were done."""
    jobs: queue.Queue[str] = queue.Queue()
    queued: set[str] = set()

    def enqueue(items: list[KVEntry], meta: Meta) -> None:
        for entry in items:  # called on the watch's thread, latest listing first
            if entry["Key"] not in queued:
                queued.add(entry["Key"])
                jobs.put(entry["Key"])

    done = 0
    with (
        LiveConfig[Mapping[str, Any]](client, SETTINGS, debounce=None, ready_timeout=30) as config,
        watch(client.kv.items(QUEUE), enqueue),
    ):
        while True:
            key = jobs.get(timeout=30)
            if key.endswith("/stop"):
                client.kv.delete(key)
                return done
            batch = int(config.value["batch_size"])  # read live, per job
            with client.lock(key + ".lock", lock_delay=0) as lock:
                entry, _ = client.kv.get(key)
                if entry is None:  # another worker finished it first
                    continue
                total = sum(range(int(entry["Value"]) * batch))
                lock.check()  # still ours: the result may be written
                client.kv.put(f"examples/jobs/results/{key.rsplit('/', 1)[1]}", str(total))
                client.kv.delete(key)
            done += 1
            print(f"{name}: {key.rsplit('/', 1)[1]} (batch {batch}) -> {total}", flush=True)


def main() -> None:
    with consul() as client:
        client.kv.put(SETTINGS + "batch_size", b"2")
        for n in (1, 2, 3):
            client.kv.put(f"{QUEUE}job-{n}", str(n))
        client.kv.put(QUEUE + "zz/stop", b"")  # sorts last: the queue is listed by key
        print(f"worker-a did {run_worker(client, 'worker-a')} jobs")


if __name__ == "__main__":
    main()
