"""The Flask example's app, driven in-process with Flask's test client (the examples run as
programs in tests/test_examples.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from consul_streams.sync import Consul, LiveConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


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
