"""The dev agent's settings as ``consul agent -dev`` takes them: flags, JSON config files, keywords.

One resolved :class:`AgentSettings` feeds ``DevAgent(...)``. Precedence is Consul's: built-in
defaults, then config files (``-config-file`` in the order given, ``-config-dir`` files in
lexical order, later ones overriding earlier ones, objects merged key by key), then explicit
flags or keywords. Config keys read (Consul's names, JSON only): ``node_name``, ``datacenter``,
``bind_addr``, ``client_addr``, ``addresses.http``, ``ports.http``, ``node_meta``,
``enable_script_checks``, ``translate_wan_addrs``, ``acl.enabled``, ``acl.default_policy``,
``acl.tokens.initial_management`` (also the legacy ``acl.tokens.master`` and
``acl_master_token``), ``data_dir``, ``pid_file``, ``log_level``; ``commit_delay`` (ours, a Go
duration) too. Other keys of Consul's config are accepted and ignored.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._rules import parse_go_duration
from ..exceptions import InvalidArgument

__all__ = [
    "DEFAULT_COMMIT_DELAY",
    "LOG_LEVELS",
    "AgentSettings",
    "default_node_name",
    "is_ip_address",
    "is_loopback",
    "load_config",
    "parse_node_meta",
    "resolve_settings",
]

#: How long a write waits for its pretend Raft commit unless told otherwise (seconds). A
#: ``consul agent -dev`` answers a KV write after some milliseconds; clients written against it
#: rely on a write not being visible to a read sent at the same moment (node-consul's watch
#: test sends its first read just after its first write, on a new connection). 5 ms lost that
#: race once in eight runs on a loaded machine; 10 ms keeps a margin.
DEFAULT_COMMIT_DELAY = 0.010
#: Consul's log levels (``-log-level``), case-insensitive.
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
_META_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: Settings a config file or keyword may give: name -> (config path, kind).
_CONFIG_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "node_name": (("node_name",),),
    "datacenter": (("datacenter",),),
    "bind_addr": (("bind_addr",),),
    "client_addr": (("addresses", "http"), ("client_addr",)),
    "http_port": (("ports", "http"),),
    "node_meta": (("node_meta",),),
    "enable_script_checks": (("enable_script_checks",),),
    "translate_wan_addrs": (("translate_wan_addrs",),),
    "acl_enabled": (("acl", "enabled"),),
    "acl_default_policy": (("acl", "default_policy"),),
    "management_token": (
        ("acl", "tokens", "initial_management"),
        ("acl", "tokens", "master"),
        ("acl_master_token",),
    ),
    "data_dir": (("data_dir",),),
    "pid_file": (("pid_file",),),
    "log_level": (("log_level",),),
    "commit_delay": (("commit_delay",),),
}


def default_node_name() -> str:
    """Consul's default node name: the host name."""
    return socket.gethostname() or "dev"


def is_ip_address(host: object) -> bool:
    """Whether ``host`` is an IP address literal (or ``"localhost"``) the agent can bind."""
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the agent reachable from this machine only."""
    return host == "localhost" or (is_ip_address(host) and ipaddress.ip_address(host).is_loopback)


@dataclass
class AgentSettings:
    """Every setting of one dev agent, resolved (defaults < config files < explicit)."""

    node_name: str = field(default_factory=default_node_name)
    datacenter: str = "dc1"
    #: The node's cluster address (Consul's ``-bind``): the catalog Address of the node.
    bind_addr: str = "127.0.0.1"
    #: Where the HTTP API listens (Consul's ``-client`` / ``addresses.http``).
    client_addr: str = "127.0.0.1"
    #: None: not configured (``consul-streams dev`` then uses 8500, ``DevAgent`` a free port).
    http_port: int | None = None
    node_meta: dict[str, str] = field(default_factory=dict)
    #: On by default, unlike Consul: the agent stores script checks but never runs them, so the
    #: remote-code-execution risk Consul's default guards against does not exist here.
    enable_script_checks: bool = True
    #: Consul's translate_wan_addrs: answers carry ``X-Consul-Translate-Addresses: true``.
    translate_wan_addrs: bool = False
    #: None: not configured; then ``acl_default_policy="deny"`` alone turns enforcement on.
    acl_enabled: bool | None = None
    acl_default_policy: str = "allow"
    management_token: str | None = field(default=None, repr=False)
    data_dir: str | None = None
    pid_file: str | None = None
    log_level: str = "info"
    commit_delay: float = DEFAULT_COMMIT_DELAY

    @property
    def enforced_policy(self) -> str:
        """The policy requests are checked against: ``allow`` whenever ACLs are off."""
        return "allow" if self.acl_enabled is False else self.acl_default_policy


def parse_node_meta(items: Iterable[str], parameter: str = "node_meta") -> dict[str, str]:
    """``["k:v", ...]`` (Consul's ``-node-meta key:value``) as a dict."""
    meta: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise InvalidArgument(parameter, f"expected key:value, got {item!r}")
        meta[key] = value
    return meta


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _read_json(path: str, parameter: str) -> Mapping[str, Any]:
    if path.endswith(".hcl"):
        raise InvalidArgument(parameter, f"{path}: only JSON config files are supported")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise InvalidArgument(parameter, f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidArgument(parameter, f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(parameter, f"{path}: expected a JSON object at the top level")
    return data


def load_config(
    config_files: Sequence[str] = (), config_dirs: Sequence[str] = ()
) -> dict[str, Any]:
    """Merge the JSON config files (files first, then each dir's ``*.json`` in lexical order)."""
    merged: dict[str, Any] = {}
    for path in config_files:
        _merge(merged, _read_json(path, "config_file"))
    for directory in config_dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise InvalidArgument(
                "config_dir", f"cannot read {directory}: {exc.strerror}"
            ) from None
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".hcl") or (name.endswith(".json") and os.path.isfile(path)):
                _merge(merged, _read_json(path, "config_dir"))
    return merged


def _lookup(config: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, paths in _CONFIG_KEYS.items():
        for path in paths:
            present, value = _lookup(config, path)
            if present:
                found[name] = (value, ".".join(path))
                break
    return found


def _check(name: str, value: Any, where: str) -> Any:
    """Validate one setting; ``where`` names it in errors (a keyword or a config key)."""
    if name in ("node_name", "datacenter", "data_dir", "pid_file", "management_token"):
        if not isinstance(value, str) or (name in ("node_name", "datacenter") and not value):
            raise InvalidArgument(where, f"expected a non-empty string, got {value!r}")
        return value
    if name in ("bind_addr", "client_addr"):
        if not is_ip_address(value):
            raise InvalidArgument(where, f"expected an IP address such as 127.0.0.1, got {value!r}")
        return value
    if name == "http_port":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise InvalidArgument(
                where, f"expected an int in 0..65535 (0 = any free port), got {value!r}"
            )
        return value
    if name in ("enable_script_checks", "acl_enabled", "translate_wan_addrs"):
        if not isinstance(value, bool):
            raise InvalidArgument(where, f"expected true or false, got {value!r}")
        return value
    if name == "acl_default_policy":
        if value not in ("allow", "deny"):
            raise InvalidArgument(where, f"expected 'allow' or 'deny', got {value!r}")
        return value
    if name == "log_level":
        if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
            raise InvalidArgument(where, f"expected one of {', '.join(LOG_LEVELS)}; got {value!r}")
        return value.lower()
    if name == "node_meta":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise InvalidArgument(where, f"expected an object of string values, got {value!r}")
        for key in value:
            if not _META_KEY.fullmatch(key):
                raise InvalidArgument(
                    where, f"key {key!r} may only contain alphanumerics, '-' and '_'"
                )
        return dict(value)
    if name == "commit_delay":
        seconds = value
        if isinstance(value, str):
            try:
                seconds = parse_go_duration(value)
            except ValueError:
                seconds = None
        if (
            not isinstance(seconds, (int, float))
            or isinstance(seconds, bool)
            or not 0 <= seconds <= 10
        ):
            raise InvalidArgument(
                where, f"expected seconds in 0..10 or a Go duration such as '5ms', got {value!r}"
            )
        return float(seconds)
    raise AssertionError(name)  # pragma: no cover - every key of _CONFIG_KEYS is handled


def resolve_settings(
    *,
    config_file: str | Sequence[str] | None = None,
    config_dir: str | Sequence[str] | None = None,
    **explicit: Any,
) -> AgentSettings:
    """Defaults, then the config files, then every ``explicit`` setting that is not None."""
    files = [config_file] if isinstance(config_file, str) else list(config_file or ())
    dirs = [config_dir] if isinstance(config_dir, str) else list(config_dir or ())
    settings = AgentSettings()
    for name, (value, key) in _from_config(load_config(files, dirs)).items():
        setattr(settings, name, _check(name, value, f"config {key}"))
    for name, value in explicit.items():
        if name not in _CONFIG_KEYS:
            raise TypeError(f"unexpected setting {name!r}")
        if value is not None:
            setattr(settings, name, _check(name, value, name))
    return settings
