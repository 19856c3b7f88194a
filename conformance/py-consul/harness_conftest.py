"""Harness for py-consul's own test suite against ``consul-streams dev`` (issue 9).

run.sh copies this file over the root ``conftest.py`` of py-consul's sdist (from PyPI). It
replaces only the agent-starting harness: py-consul starts a ``hashicorp/consul:<version>``
Docker container with ``agent -dev -client=0.0.0.0 -log-level trace`` and its JSON config in
``CONSUL_LOCAL_CONFIG``; here each fixture starts one fresh ``consul-streams dev -dev -client
127.0.0.1 -http-port <free> -log-level trace -config-file <that same JSON>``. The fixtures keep
their names and contracts (``ConsulInstance(container, port, version)``, the ``(instance,
token)`` pair of ``acl_consul_instance``); ``container`` is a stand-in with ``logs()``,
``stop()`` and ``remove()``. Tests listed in na.txt are skipped as not applicable.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

CONSUL_VERSIONS = ["dev"]
BIN = os.environ.get("CONSUL_STREAMS_BIN", "consul-streams")
NA_FILE = os.environ.get("PYCONSUL_NA", "")

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])

LOGS_DIR = Path(__file__).parent / "logs"
LOGS_DIR.mkdir(exist_ok=True)


def _not_applicable() -> list[tuple[str, str]]:
    if not NA_FILE:
        return []
    out = []
    for line in Path(NA_FILE).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            node_id, reason = (part.strip() for part in line.split("|", 1))
            out.append((node_id, reason))
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    na = _not_applicable()
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        for node_id, reason in na:
            if base == node_id or base.startswith(node_id + "::"):
                item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))
                break


def pytest_terminal_summary(terminalreporter: Any) -> None:
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    terminalreporter.write_line(
        f"py-consul suite: {passed}/{passed + failed} applicable ({skipped} not applicable)"
    )


@pytest.fixture(scope="session", autouse=True)
def _unset_consul_token() -> None:
    os.environ.pop("CONSUL_HTTP_TOKEN", None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DevAgentProcess:
    """What the harness used of a Docker container: logs(), stop(), remove()."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: str, cfg_path: str) -> None:
        self.proc, self.log_path, self.cfg_path = proc, log_path, cfg_path

    def logs(self) -> bytes:
        return Path(self.log_path).read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self) -> None:
        for path in (self.log_path, self.cfg_path):
            Path(path).unlink(missing_ok=True)


def start_consul_container(
    version: str, acl_master_token: str | None = None
) -> tuple[DevAgentProcess, int]:
    config: dict[str, Any] = {
        "ports": {"https": -1, "dns": -1, "grpc_tls": -1},
        "performance": {"raft_multiplier": 1},
        "enable_script_checks": True,
    }
    if acl_master_token:
        config["primary_datacenter"] = "dc1"
        config["acl"] = {"enabled": True, "tokens": {"initial_management": acl_master_token}}
    fd, cfg_path = tempfile.mkstemp(suffix=".json", prefix="pyconsul-cfg-")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    fd, log_path = tempfile.mkstemp(suffix=".log", prefix="pyconsul-agent-")
    port = _free_port()
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [BIN, "dev", "-dev", "-client", "127.0.0.1", "-http-port", str(port),
             "-log-level", "trace", "-config-file", cfg_path],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    container = DevAgentProcess(proc, log_path, cfg_path)

    # py-consul's own readiness checks, unchanged: a leader, then a registered service.
    base_uri = f"http://127.0.0.1:{port}/v1/"
    deadline = time.monotonic() + 20
    while True:
        if time.monotonic() > deadline or proc.poll() is not None:
            container.stop()
            out = container.logs().decode(errors="replace")
            container.remove()
            raise TimeoutError("consul-streams dev did not start:\n" + out)
        time.sleep(0.1)
        try:
            response = requests.get(base_uri + "status/leader", timeout=2)
            if response.status_code == 200 and response.json():
                break
        except requests.RequestException:
            continue
    for _ in range(10):
        try:
            requests.put(
                base_uri + "agent/service/register", json={"name": "test-service"}, timeout=2
            )
            response = requests.get(base_uri + "health/service/test-service", timeout=2)
            if response.status_code == 200 and response.json():
                requests.put(base_uri + "agent/service/deregister/test-service", timeout=2)
                return container, port
        except requests.RequestException:
            time.sleep(0.5)
    container.stop()
    container.remove()
    raise RuntimeError("Failed to verify Consul startup")


def get_consul_version(port: int) -> str:
    response = requests.get(f"http://127.0.0.1:{port}/v1/agent/self", timeout=10)
    version: str = response.json()["Config"]["Version"].strip()
    return version


def setup_and_teardown_consul(
    request: pytest.FixtureRequest, version: str, acl_master_token: str | None = None
) -> Iterator[Any]:
    container, port = start_consul_container(version=version, acl_master_token=acl_master_token)
    try:
        instance = ConsulInstance(container, port, get_consul_version(port))
        yield instance if acl_master_token is None else (instance, acl_master_token)
    finally:
        log_file = LOGS_DIR / f"{request.node.name}.log"
        log_file.write_text(container.logs().decode("utf-8", errors="replace"))
        container.stop()
        container.remove()


@pytest.fixture(params=CONSUL_VERSIONS)
def consul_instance(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from setup_and_teardown_consul(request, version=request.param)


@pytest.fixture(params=CONSUL_VERSIONS)
def acl_consul_instance(request: pytest.FixtureRequest) -> Iterator[Any]:
    token = uuid.uuid4().hex
    yield from setup_and_teardown_consul(request, version=request.param, acl_master_token=token)


@pytest.fixture
def consul_port(consul_instance: Any) -> tuple[int, str]:
    return consul_instance.port, consul_instance.version
