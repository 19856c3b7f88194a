"""The pytest plugin works in a project that only installs consul_streams (pytester)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

pytest_plugins = ["pytester"]

_PLUGIN = "consul_streams.testing.pytest_plugin"
# Installed distributions load the plugin through the pytest11 entry point; a bare source
# checkout has to name it with -p (naming it twice is an error in pytest).
_INSTALLED = any(ep.name == "consul_streams" for ep in entry_points(group="pytest11"))
_LOAD = () if _INSTALLED else ("-p", _PLUGIN)
_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

_TESTS = """
import os

import pytest
from consul_streams.testing import DevAgent


async def test_agent_fixture(consul_agent):
    assert isinstance(consul_agent, DevAgent)
    assert consul_agent.running
    assert consul_agent.config.jitter is False


async def test_client_fixture_talks_to_the_agent(consul_client, consul_agent):
    assert consul_client.address.rstrip("/") == consul_agent.url
    assert await consul_client.kv.put("k", b"v") is True
    entry, meta = await consul_client.kv.get("k")
    assert entry["Value"] == b"v"
    assert meta.index >= 1


@pytest.mark.real_consul
async def test_marked_for_real_consul(consul_client):
    address = os.environ.get("CONSUL_HTTP_ADDR")
    if address:
        assert consul_client.address.rstrip("/") == "http://" + address
    else:
        leader, _meta = await consul_client.status.leader()
        assert leader == "127.0.0.1:8300"
"""


def test_entry_point_names_the_plugin() -> None:
    root = Path(__file__).resolve().parents[2]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"]["consul_streams"] == _PLUGIN


def test_fixtures_against_the_dev_agent(pytester: pytest.Pytester) -> None:
    pytester.makeini(_INI + "filterwarnings = error\n")
    pytester.makepyfile(test_project=_TESTS)
    result = pytester.runpytest(*_LOAD)
    result.assert_outcomes(passed=3)


def test_real_consul_mode_skips_the_agent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
    pytester.makeini(_INI)
    pytester.makepyfile(test_project=_TESTS)
    result = pytester.runpytest(*_LOAD, "--real-consul", "-k", "agent_fixture or marked")
    result.assert_outcomes(passed=1, skipped=1)


def test_real_consul_option_needs_the_address(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSUL_HTTP_ADDR", raising=False)
    pytester.makeini(_INI)
    pytester.makepyfile(test_project="def test_x():\n    pass\n")
    result = pytester.runpytest(*_LOAD, "--real-consul")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
