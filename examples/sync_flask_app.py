"""A Flask app whose request handler reads its configuration live from Consul.

``create_app(client)`` starts a :class:`~consul_streams.sync.LiveConfig` on the ``examples/
flask/`` prefix; each request reads ``config.value``, the last good configuration, an
immutable snapshot (no lock needed, whichever worker thread serves the request). A change of
the key reaches the next request without a restart.

Run: ``python examples/sync_flask_app.py`` (uses an embedded dev agent unless CONSUL_HTTP_ADDR
is set); it drives the app with Flask's test client and ends by itself. In production, build
the app once per process (gunicorn workers: ``create_app`` in a post-fork hook, or rely on the
client's fork detection with ``--preload``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from _sync_support import consul
from flask import Flask

from consul_streams.sync import Consul, LiveConfig

PREFIX = "examples/flask/"


def create_app(client: Consul) -> Flask:
    """The app, with its live configuration in ``app.extensions["consul_config"]``."""
    config: LiveConfig[Mapping[str, Any]] = LiveConfig(
        client, PREFIX, debounce=None, ready_timeout=30
    ).start()
    app = Flask(__name__)
    app.extensions["consul_config"] = config

    @app.get("/greeting")
    def greeting() -> str:
        return f"{config.value['greeting']}, world"

    return app


def main() -> None:
    with consul() as client:
        client.kv.put(PREFIX + "greeting", b"hello")
        app = create_app(client)
        config: LiveConfig[Mapping[str, Any]] = app.extensions["consul_config"]
        with app.test_client() as http:
            print(http.get("/greeting").get_data(as_text=True))
            client.kv.put(PREFIX + "greeting", b"bonjour")
            config.changed(30, after=1)
            print(http.get("/greeting").get_data(as_text=True))
        config.close()


if __name__ == "__main__":
    main()
