"""Smoke tests: every example runs against an embedded dev agent and ends by itself."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


async def run_example(name: str, timeout: float = 30.0) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CONSUL_HTTP_ADDR", None)  # the examples then start their own dev agent
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("using an embedded dev agent at http://127.0.0.1:")
    return text


async def test_config_reload_example() -> None:
    out = await run_example("config_reload.py")
    assert "before: hello (max_items=10)" in out
    assert "reloaded to version 2" in out
    assert "after burst: bonjour (max_items=25)" in out
    assert "rejected: validation failed" in out
    assert "still serving: bonjour (max_items=25)" in out


async def test_service_client_example() -> None:
    out = await run_example("service_client.py")
    lines = out.splitlines()
    split = lines.index("example-web-1 left the picker (1 healthy)")
    before, after = lines[1:split], lines[split + 1 :]
    assert sorted(before) == ["answered by backend-1"] * 2 + ["answered by backend-2"] * 2
    assert after == ["answered by backend-2"] * 2


async def test_leader_worker_example() -> None:
    out = await run_example("leader_worker.py")
    lines = out.splitlines()[1:]
    leaders = [line.split()[0] for line in lines if line.endswith("is the leader")]
    assert sorted(leaders) == ["worker-a", "worker-b"]
    first, second = leaders
    # Terms never overlap: the second leads only after the first stepped down.
    assert lines.index(f"{second} is the leader") > lines.index(f"{first} steps down")
    assert lines[-1] == "both workers led once"


async def test_event_subscriber_example() -> None:
    out = await run_example("event_subscriber.py")
    events = [line for line in out.splitlines() if line.startswith("event ")]
    assert [e.split(" (")[0] for e in events] == [
        "event deploy: release v1",
        "event deploy: release v2",
        "event deploy: release v3",
    ]
    assert "old release" not in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("[!_]*.py")))
def test_every_example_has_a_smoke_test(name: str) -> None:
    stem = name.removesuffix(".py")
    assert f"test_{stem}_example" in globals()


async def test_fencing_example() -> None:
    out = await run_example("fencing.py")
    lines = out.splitlines()[1:]
    assert lines[0].startswith("a holds the lock with token ")
    assert lines[1].startswith("b holds the lock with token ")
    a_token = int(lines[0].split("token ")[1].split()[0])
    b_token = int(lines[1].split("token ")[1].split()[0])
    assert a_token < b_token
    assert lines[2] == f"the store refused a's stale write (token {a_token} < {b_token})"
    assert lines[3] == "rows: ['a: first write', 'b: first write']"


# The sync layer's examples (#14); tests/sync/test_sync_examples.py drives the Flask app
# in-process too.
async def test_sync_script_example() -> None:
    lines = (await run_example("sync_script.py")).splitlines()[1:]
    assert lines[0].startswith("color is red at index ")
    assert lines[-2:] == ["examples/script/: ['blue']", "done"]


async def test_sync_flask_app_example() -> None:
    lines = (await run_example("sync_flask_app.py")).splitlines()[1:]
    assert lines == ["hello, world", "bonjour, world"]


async def test_sync_django_settings_example() -> None:
    lines = (await run_example("sync_django_settings.py")).splitlines()[1:]
    assert lines == [
        "setting_changed: ITEMS_PER_PAGE = 25",
        "ITEMS_PER_PAGE=25 FEATURE_SEARCH=False",
        "setting_changed: FEATURE_SEARCH = True",
        "ITEMS_PER_PAGE=25 FEATURE_SEARCH=True",
    ]


async def test_sync_worker_example() -> None:
    lines = (await run_example("sync_worker.py")).splitlines()[1:]
    assert lines == [
        "worker-a: job-1 (batch 2) -> 1",
        "worker-a: job-2 (batch 2) -> 6",
        "worker-a: job-3 (batch 2) -> 15",
        "worker-a did 3 jobs",
    ]
