"""A Django settings hook: settings that follow a Consul KV prefix while the site runs.

``follow_consul(client, prefix)`` starts a :class:`~consul_streams.sync.LiveConfig` and, for
each new good configuration, sets the UPPER_CASE keys under ``prefix`` on
``django.conf.settings`` and sends Django's ``setting_changed`` signal for each setting that
changed, as ``override_settings`` does, so that code caching a setting can drop its cache.
Call it once, e.g. from an ``AppConfig.ready()``.

Run: ``python examples/sync_django_settings.py`` (uses an embedded dev agent unless
CONSUL_HTTP_ADDR is set); it ends by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import django
from _sync_support import consul
from django.conf import settings
from django.test.signals import setting_changed

from consul_streams.sync import ConfigSnapshot, Consul, LiveConfig

PREFIX = "examples/django/"


def follow_consul(client: Consul, prefix: str) -> LiveConfig[Mapping[str, Any]]:
    """Keep the UPPER_CASE settings under ``prefix`` in step with Consul."""

    def apply(snapshot: ConfigSnapshot[Mapping[str, Any]]) -> None:
        for name, value in snapshot.value.items():
            if not name.isupper() or getattr(settings, name, None) == value:
                continue
            setattr(settings, name, value)
            setting_changed.send(sender=follow_consul, setting=name, value=value, enter=True)

    config: LiveConfig[Mapping[str, Any]] = LiveConfig(
        client, prefix, format="json", debounce=None, ready_timeout=30
    ).start()
    apply(config.current)  # the settings are right before the first request
    config.on_change(apply)  # later changes, on the config's callback thread
    return config


def main() -> None:
    settings.configure(DEBUG=False, FEATURE_SEARCH=False, ITEMS_PER_PAGE=10)
    django.setup()
    changed = threading.Event()

    def on_setting_changed(setting: str, value: Any, **kwargs: Any) -> None:
        print(f"setting_changed: {setting} = {value!r}", flush=True)
        if setting == "FEATURE_SEARCH":
            changed.set()

    setting_changed.connect(on_setting_changed)
    with consul() as client:
        client.kv.put(PREFIX + "ITEMS_PER_PAGE", b"25")
        config = follow_consul(client, PREFIX)
        print(f"ITEMS_PER_PAGE={settings.ITEMS_PER_PAGE} FEATURE_SEARCH={settings.FEATURE_SEARCH}")
        client.kv.put(PREFIX + "FEATURE_SEARCH", b"true")
        if not changed.wait(30):
            raise SystemExit("the change did not arrive")
        print(f"ITEMS_PER_PAGE={settings.ITEMS_PER_PAGE} FEATURE_SEARCH={settings.FEATURE_SEARCH}")
        config.close()


if __name__ == "__main__":
    main()
