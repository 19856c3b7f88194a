"""The dev agent starts like ``consul agent -dev``: flags, config files, keywords (issue 9, 2)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from consul_streams.cli import main
from consul_streams.cli._dev import dev_settings
from consul_streams.cli._parser import UsageError, build_parser
from consul_streams.exceptions import InvalidArgument
from consul_streams.testing import DevAgent
from consul_streams.testing._settings import AgentSettings


def settings(*argv: str) -> AgentSettings:
    result: AgentSettings = dev_settings(build_parser().parse_args(["dev", *argv]))
    return result


def test_consul_flag_spellings_one_dash_two_dashes_and_equals() -> None:
    """agent/config/flags.go AddFlags: Go's flag package takes -f v, --f v and -f=v alike."""
    for argv in (
        ("-node", "n1", "-datacenter", "east", "-client", "127.0.0.2", "-http-port", "8600"),
        ("--node", "n1", "--datacenter", "east", "--client", "127.0.0.2", "--http-port", "8600"),
        ("-node=n1", "-datacenter=east", "-client=127.0.0.2", "-http-port=8600"),
    ):
        s = settings("-dev", *argv)
        assert (s.node_name, s.datacenter, s.client_addr, s.http_port) == (
            "n1",
            "east",
            "127.0.0.2",
            8600,
        )


def test_defaults_are_a_dev_agents() -> None:
    """agent/config/builder.go: node_name defaults to os.Hostname(); dev mode ports.http 8500."""
    s = settings()
    assert s.node_name == socket.gethostname()
    assert (s.datacenter, s.client_addr, s.bind_addr, s.http_port) == (
        "dc1",
        "127.0.0.1",
        "127.0.0.1",
        8500,
    )
    assert s.commit_delay > 0
    # Deliberately unlike Consul (docs/dev-agent.md): script checks are stored, never run.
    assert s.enable_script_checks is True
    assert settings("-enable-script-checks=false").enable_script_checks is False


def test_bind_is_the_cluster_address_and_legacy_aliases_keep_their_meaning() -> None:
    """agent/config/flags.go: -bind is the cluster bind address, -client the HTTP one."""
    s = settings("-bind", "127.0.0.3", "--bind", "127.0.0.4", "--port", "0")
    assert (s.bind_addr, s.client_addr, s.http_port) == ("127.0.0.3", "127.0.0.4", 0)
    with pytest.raises(UsageError, match="--bind is an alias of -client"):
        settings("--bind", "127.0.0.1", "-client", "127.0.0.1")
    with pytest.raises(UsageError, match="--port is an alias of -http-port"):
        settings("--port", "1", "-http-port", "2")


def test_node_meta_repeats_and_needs_key_colon_value() -> None:
    """agent/config/flags.go: -node-meta key:value, repeatable."""
    assert settings("-node-meta", "a:1", "-node-meta=b:x:y").node_meta == {"a": "1", "b": "x:y"}
    with pytest.raises(UsageError, match="-node-meta: expected key:value, got 'nocolon'"):
        settings("-node-meta", "nocolon")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("-log-level", "loud"), "-log-level: expected one of trace, debug, info, warn, error"),
        (("-client", "example.com"), "-client: expected an IP address"),
        (("-http-port", "70000"), "-http-port: expected an int in 0..65535"),
        (("-commit-delay", "soon"), "-commit-delay: expected seconds in 0..10 or a Go duration"),
        (("-node", ""), "-node: expected a non-empty string"),
    ],
)
def test_bad_flag_values_name_the_flag(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        settings(*argv)


def test_bad_flags_exit_2_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "-dev=maybe"]) == 2
    assert "-dev/--dev: invalid boolean value 'maybe'" in capsys.readouterr().err


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "consul.d"
    d.mkdir()
    return d


def test_config_file_keys_and_flags_win(tmp_path: Path) -> None:
    """agent/config/builder.go: config sources merge in order; command-line flags come last."""
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {
                "node_name": "from-file",
                "datacenter": "dc9",
                "ports": {"http": 8700},
                "node_meta": {"rack": "r1"},
                "enable_script_checks": True,
                "acl": {
                    "enabled": True,
                    "default_policy": "deny",
                    "tokens": {"initial_management": "root"},
                },
                "server": True,
                "ui_config": {"enabled": True},
            }
        )
    )
    s = settings("-config-file", str(path), "-node", "from-flag")
    assert (s.node_name, s.datacenter, s.http_port, s.node_meta) == (
        "from-flag",
        "dc9",
        8700,
        {"rack": "r1"},
    )
    assert (s.enable_script_checks, s.enforced_policy, s.management_token) == (True, "deny", "root")


def test_config_dir_reads_json_in_lexical_order(config_dir: Path) -> None:
    """agent/config/builder.go: a -config-dir's files load sorted by name; later ones win."""
    (config_dir / "b.json").write_text('{"datacenter": "second", "node_meta": {"b": "2"}}')
    (config_dir / "a.json").write_text('{"datacenter": "first", "node_meta": {"a": "1"}}')
    (config_dir / "notes.txt").write_text("not config")
    s = settings("-config-dir", str(config_dir))
    assert (s.datacenter, s.node_meta) == ("second", {"a": "1", "b": "2"})


def test_legacy_master_token_and_acl_off(tmp_path: Path) -> None:
    """agent/config/builder.go: acl.tokens.master is the legacy initial_management."""
    path = tmp_path / "acl.json"
    path.write_text(
        '{"acl": {"enabled": false, "default_policy": "deny", "tokens": {"master": "m"}}}'
    )
    s = settings("-config-file", str(path))
    assert (s.management_token, s.enforced_policy) == ("m", "allow")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ("[]", "expected a JSON object at the top level"),
        ('{"ports": {"http": "80"}}', "config ports.http: expected an int in 0..65535"),
        ('{"acl": {"default_policy": "block"}}', "config acl.default_policy: expected 'allow'"),
        ('{"node_meta": {"a b": "c"}}', "config node_meta: key 'a b' may only contain"),
    ],
)
def test_bad_config_files_name_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        settings("-config-file", str(path))


def test_hcl_and_missing_config_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.hcl").write_text('datacenter = "x"')
    with pytest.raises(UsageError, match="only JSON config files are supported"):
        settings("-config-file", str(tmp_path / "a.hcl"))
    with pytest.raises(UsageError, match=r"-config-dir: .*only JSON"):
        settings("-config-dir", str(tmp_path))
    with pytest.raises(UsageError, match="-config-file: cannot read"):
        settings("-config-file", str(tmp_path / "missing.json"))


# -- DevAgent takes the same settings by keyword ---------------------------------------------


async def test_devagent_keywords_shape_the_dev_node(tmp_path: Path) -> None:
    """agent/agent.go: the dev node's catalog entry carries node_name, bind address, node_meta."""
    async with (
        DevAgent(
            node_name="n1", datacenter="dc7", bind_addr="127.0.0.5", node_meta={"k": "v"}
        ) as a,
        aiohttp.ClientSession() as s,
        s.get(a.url + "/v1/catalog/nodes") as r,
    ):
        (node,) = await r.json()
    assert (node["Node"], node["Datacenter"], node["Address"]) == ("n1", "dc7", "127.0.0.5")
    assert node["Meta"]["k"] == "v"


async def test_devagent_default_node_name_is_the_host_name() -> None:
    async with DevAgent() as a:
        assert a.config.node_name == socket.gethostname()


async def test_devagent_config_file_and_keywords_win(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"node_name": "file", "datacenter": "dcf"}')
    agent = DevAgent(config_file=str(path), datacenter="kw")
    assert (agent.config.node_name, agent.config.datacenter) == ("file", "kw")
    with pytest.raises(InvalidArgument, match="node_meta: key 'a b'"):
        DevAgent(node_meta={"a b": "c"})
    with pytest.raises(InvalidArgument, match="host: give host or client_addr"):
        DevAgent(host="127.0.0.1", client_addr="127.0.0.1")


async def test_pid_file_written_on_start_removed_on_stop(tmp_path: Path) -> None:
    """agent/agent.go storePid / deletePid."""
    pid = tmp_path / "consul.pid"
    async with DevAgent(pid_file=str(pid)):
        assert pid.read_text() == str(os.getpid())
    assert not pid.exists()


async def test_script_checks_need_enable_script_checks() -> None:
    """agent/agent.go addCheck: a script check from the HTTP API needs enable_script_checks."""
    body = json.dumps({"Name": "s", "Args": ["true"], "Interval": "10s"})
    for enabled, status in ((False, 500), (True, 200)):
        async with (
            DevAgent(enable_script_checks=enabled) as a,
            aiohttp.ClientSession() as s,
            s.put(a.url + "/v1/agent/check/register", data=body) as r,
        ):
            assert r.status == status
            if not enabled:
                assert "Scripts are disabled on this agent from remote calls" in await r.text()


# -- the command, as a process ------------------------------------------------------------------


def test_command_starts_with_consul_flags_writes_pid_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The node-consul harness's command line; SIGTERM stops it and removes the pid file."""
    pid = tmp_path / "agent.pid"
    argv = [sys.executable, "-m", "consul_streams.cli", "dev", "-node", "node1"]
    argv += ["-datacenter", "dc1", "-client", "127.0.0.1", "-http-port", "0"]
    argv += ["-pid-file", str(pid), "-log-level=debug", "-data-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if "CONSUL_HTTP_ADDR=" in line:
                url = line.strip().split("=", 1)[1]
                break
        assert url.startswith("http://127.0.0.1:")
        assert pid.read_text() == str(proc.pid)

        async def node_name() -> str:
            async with aiohttp.ClientSession() as s, s.get(url + "/v1/catalog/nodes") as r:
                return str((await r.json())[0]["Node"])

        assert asyncio.run(node_name()) == "node1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not pid.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
