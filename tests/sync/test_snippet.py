"""The snippet of issue 14, verbatim, as a program that never imports asyncio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from consul_streams.sync import Consul
from consul_streams.sync.testing import DevAgentThread

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """\
from consul_streams.sync import Consul, LiveConfig, ServiceInstances, watch

with Consul() as client:                          # same settings and env vars as the async one
    client.kv.put("app/db/host", b"db-1")
    entry, meta = client.kv.get("app/db/host")
    with LiveConfig(client, "app/", debounce=0.2) as config:
        print(config.value)                       # the last good config, an immutable snapshot
        config.on_change(lambda snapshot: print("reloaded", snapshot))
    with ServiceInstances(client, "web") as web:
        instance = web.wait_for_instance(timeout=10)
        print(web.pick())
    handle = watch(client.kv.items("app/"), lambda items, meta: print(meta.index), debounce=0.2)
    handle.stop()
    with client.lock("service/x/leader") as lock:
        print(lock.fencing_token)
"""


def test_issue_snippet_runs_verbatim_against_the_dev_agent(
    agent: DevAgentThread, client: Consul
) -> None:
    client.agent.service_register("web", service_id="web-1", address="10.0.0.7", port=8080)
    env = dict(os.environ, CONSUL_HTTP_ADDR=agent.address, PYTHONPATH=str(ROOT))
    env.pop("CONSUL_HTTP_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SNIPPET],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # -X dev shows every ResourceWarning and unclosed-loop complaint
    lines = proc.stdout.splitlines()
    assert lines[0] == "{'db': mappingproxy({'host': 'db-1'})}"
    assert "web-1" in lines[1]
    assert "10.0.0.7" in lines[1]
    assert int(lines[-1]) > 0  # the fencing token
    # The lock's session was destroyed and the key released on the way out.
    sessions, _ = client.session.list()
    assert sessions == []
    entry, _ = client.kv.get("service/x/leader")
    assert entry is not None
    assert "Session" not in entry
