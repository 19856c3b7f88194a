"""Fork safety: a client made before fork() works in the child on a fresh loop thread, and
nothing the child does (including its interpreter exit) touches the parent's sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consul_streams.sync import Consul
from consul_streams.sync.testing import DevAgentThread

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import multiprocessing, os, sys, threading, warnings

# Forking a process that has threads is exactly what is under test.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)

from consul_streams.sync import Consul, LiveConfig, watch

mode = sys.argv[2]
client = Consul(sys.argv[1], environ={})
client.kv.put("fork/parent", b"0")
client.kv.put("cfg/name", b"parent")
seen = []
cond = threading.Condition()

def record(entry, meta):
    with cond:
        seen.append(entry["Value"])
        cond.notify_all()

def wait_seen(value):
    with cond:
        assert cond.wait_for(lambda: seen and seen[-1] == value, 30), seen

handle = watch(client.kv.get("fork/parent"), record)
wait_seen(b"0")  # the parent's long-poll is now in flight on a socket the child inherits
config = LiveConfig(client, "cfg/", debounce=None).start()
lock = client.lock("fork/leader")
lock.acquire()
parent_loop = client.loop.thread

def child():
    assert client.loop.thread is not parent_loop
    assert client.loop.thread.is_alive()
    assert lock.lost.is_set() and not lock.held  # the parent holds it, not the child
    entry, _ = client.kv.get("fork/parent")
    assert entry["Value"] == b"0"
    client.kv.put("fork/child", str(os.getpid()))
    # The config restarts on the child's loop and follows changes there.
    assert config.value == {"name": "parent"}
    client.kv.put("cfg/name", b"child")
    assert config.changed(30, after=1).value == {"name": "child"}
    client.close()

if mode == "os.fork":
    pid = os.fork()
    if pid == 0:
        try:
            child()
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        sys.exit(0)  # a full interpreter exit: atexit, finalizers, the lot
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
else:
    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join()
    assert process.exitcode == 0

# The parent's long-poll, its connection pool, its lock and its config still work.
entry, _ = client.kv.get("fork/child")
assert entry is not None
client.kv.put("fork/parent", b"1")
wait_seen(b"1")
assert lock.held and not lock.lost.is_set()
assert config.changed(30, after=1).value == {"name": "child"}
client.close()
print("ok", flush=True)
"""


@pytest.mark.parametrize("mode", ["os.fork", "multiprocessing"])
def test_a_client_made_before_fork_works_in_the_child_and_the_parent(
    agent: DevAgentThread, client: Consul, mode: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PROGRAM, agent.address, mode],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert proc.stderr == ""
    sessions, _ = client.session.list()
    assert sessions == []  # the parent released its lock; the child never touched it
