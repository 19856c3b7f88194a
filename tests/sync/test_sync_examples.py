"""The sync examples run in CI: each as a program, and the Flask app with its test client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from consul_streams.sync import Consul, LiveConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(name: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CONSUL_HTTP_ADDR", None)  # the examples then start their own dev agent
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("using an embedded dev agent at http://127.0.0.1:")
    return lines[1:]


def test_plain_script_example() -> None:
    lines = run_example("sync_script.py")
    assert lines[0].startswith("color is red at index ")
    assert lines[-2:] == ["examples/script/: ['blue']", "done"]


def test_flask_example() -> None:
    assert run_example("sync_flask_app.py") == ["hello, world", "bonjour, world"]


def test_django_settings_example() -> None:
    assert run_example("sync_django_settings.py") == [
        "setting_changed: ITEMS_PER_PAGE = 25",
        "ITEMS_PER_PAGE=25 FEATURE_SEARCH=False",
        "setting_changed: FEATURE_SEARCH = True",
        "ITEMS_PER_PAGE=25 FEATURE_SEARCH=True",
    ]


def test_worker_example() -> None:
    assert run_example("sync_worker.py") == [
        "worker-a: job-1 (batch 2) -> 1",
        "worker-a: job-2 (batch 2) -> 6",
        "worker-a: job-3 (batch 2) -> 15",
        "worker-a did 3 jobs",
    ]


@pytest.fixture
def flask_example() -> Iterator[ModuleType]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import sync_flask_app

        yield sync_flask_app
    finally:
        sys.path.remove(str(EXAMPLES))


def test_flask_handler_reads_the_config_live(client: Consul, flask_example: ModuleType) -> None:
    """In-process: the request handler's answer changes when the key does, no restart."""
    client.kv.put("examples/flask/greeting", b"hello")
    app = flask_example.create_app(client)
    config: LiveConfig[object] = app.extensions["consul_config"]
    http = app.test_client()
    assert http.get("/greeting").get_data(as_text=True) == "hello, world"
    client.kv.put("examples/flask/greeting", b"hej")
    config.changed(30, after=1)
    assert http.get("/greeting").get_data(as_text=True) == "hej, world"
    # The client's close stops the config with it (the fixture closes the client).
