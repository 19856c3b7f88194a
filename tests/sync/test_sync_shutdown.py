"""Interpreter exit closes what a program left open: watches, recipes, locks, threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consul_streams.sync import Consul
from consul_streams.sync.testing import DevAgentThread

ROOT = Path(__file__).resolve().parents[2]

# Everything left open on purpose: no close(), no with.
PROGRAM = """
import sys
from consul_streams.sync import Consul, LiveConfig, ServiceInstances, watch

client = Consul(sys.argv[1], environ={})
client.kv.put("app/x", b"1")
handle = watch(client.kv.get("app/x"), lambda entry, meta: None)
config = LiveConfig(client, "app/").start()
config.on_change(print)
web = ServiceInstances(client, "web").start()
lock = client.lock("svc/leader")
lock.acquire()
print("holding", lock.session, flush=True)
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_interpreter_exit_closes_everything_quietly(
    agent: DevAgentThread, client: Consul, host: str
) -> None:
    address = agent.address.replace("127.0.0.1", host)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PROGRAM, address],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # -X dev reports unclosed sessions, transports and loops, and "Event loop is closed".
    assert proc.stderr == ""
    assert proc.stdout.startswith("holding ")
    sessions, _ = client.session.list()
    assert sessions == []  # the lock's session was destroyed on the way out
    entry, _ = client.kv.get("svc/leader")
    assert entry is not None
    assert "Session" not in entry
