"""The consul-streams command line: flag errors, and every command against the dev agent."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from consul_streams import Consul
from consul_streams._rules import parse_go_duration
from consul_streams.cli import main
from consul_streams.testing import DevAgent

ROOT = Path(__file__).resolve().parent.parent


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    err = capsys.readouterr().err
    return status, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "the following arguments are required: command"),
        (("nope",), "invalid choice: 'nope'"),
        (("watch", "bogus"), "invalid choice: 'bogus'"),
        (("watch", "key"), "-key: must specify a single key to watch"),
        (("watch", "keyprefix"), "-prefix: must specify a key prefix"),
        (("watch", "service"), "-service: must specify a service"),
        (("watch", "checks", "--service", "a", "--state", "critical"), "cannot specify both"),
        (("watch", "nodes", "--tag", "x"), "-tag: only valid with type service"),
        (("watch", "key", "--key", "k", "--debounce", "soon"), "--debounce: expected a duration"),
        (("watch", "key", "--key", "k", "--max-wait", "1s"), "--max-wait: only valid together"),
        (("watch", "key", "--key", "k", "--wait", "0s"), "--wait: expected a duration above 0s"),
        (("watch", "key", "--key", "k", "--wait", "601s"), "and at most 10m, got '601s'"),
        (("watch", "key", "--key", "k", "--wait=-1m"), "--wait: must not be negative"),
        (("watch", "key", "--key", "/k"), "-key: must not begin with '/'"),
        (("watch", "keyprefix", "--prefix", "a/../b"), "-prefix: must not contain '.' or '..'"),
        (("watch", "keyprefix", "--prefix", "", "--match", "("), "--match: invalid regular"),
        (("watch", "key", "--key", "k", "--format", "xml"), "invalid choice: 'xml'"),
        (("kv", "put"), "the following arguments are required: key"),
        (("dev", "--bind", "example.com"), "--bind: expected an IP address"),
        (("dev", "--port", "x"), "invalid int value: 'x'"),
        (("demo", "--duration", "0"), "--duration: expected a positive number"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status, err = run_error(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1, err
    assert err.startswith("consul-streams: error: ")
    assert message in err


def test_unreachable_agent_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    status, err = run_error(capsys, "kv", "get", "k", "-http-addr", f"127.0.0.1:{unused_tcp_port}")
    assert status == 1
    assert err.count("\n") == 1, err
    assert err.startswith("consul-streams: error: ")


def test_watch_against_unreachable_agent_names_the_address(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    addr = f"127.0.0.1:{unused_tcp_port}"
    status, err = run_error(capsys, "watch", "key", "-key", "k", "--http-addr", addr)
    assert status == 1
    assert f"cannot reach the Consul agent at {addr}" in err
    assert err.count("\n") == 1, err


def test_token_never_printed_in_errors(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    addr = f"127.0.0.1:{unused_tcp_port}"
    status, err = run_error(capsys, "watch", "nodes", "-token", "s3cret-token", "-http-addr", addr)
    assert status == 1
    assert "s3cret-token" not in err


# --- against the dev agent ----------------------------------------------------------------


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as dev:
        yield dev


@pytest_asyncio.fixture
async def client(agent: DevAgent) -> AsyncIterator[Consul]:
    async with Consul(agent.address) as c:
        yield c


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in a thread (it runs its own event loop), as the script would."""
    status = await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 15)
    out, err = capsys.readouterr()
    return status, out, err


async def test_kv_put_get_delete(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    addr = ("-http-addr", agent.address)
    assert (await cli(capsys, "kv", "put", "a/b", "hello", *addr))[:2] == (0, "true\n")
    entry, _ = await client.kv.get("a/b")
    assert entry is not None
    assert entry["Value"] == b"hello"
    assert (await cli(capsys, "kv", "get", "a/b", *addr))[:2] == (0, "hello\n")
    status, out, _ = await cli(capsys, "kv", "get", "a/", "--recurse", "--format", "json", *addr)
    assert status == 0
    assert [(e["Key"], e["Value"]) for e in json.loads(out)] == [("a/b", "hello")]
    assert (await cli(capsys, "kv", "delete", "a/b", *addr))[:2] == (0, "true\n")
    status, out, err = await cli(capsys, "kv", "get", "a/b", *addr)
    assert status == 1
    assert err == "consul-streams: error: no key 'a/b'\n"


async def test_kv_put_cas_failure_exits_1(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    await client.kv.put("k", "v")
    status, out, _ = await cli(
        capsys, "kv", "put", "k", "w", "--cas", "0", "--http-addr", agent.address
    )
    assert (status, out) == (1, "false\n")


async def test_watch_validates_then_probes_then_sends_the_wait(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """The leader probe is the first request; the blocking read carries the --wait given."""
    argv = ["watch", "key", "-key", "k", "--wait", "10m", "--count", "2"]
    run = asyncio.create_task(cli(capsys, *argv, "-http-addr", agent.address))
    await asyncio.wait_for(agent.wait_blocked(1), 15)
    await client.kv.put("k", "v")
    status, out, err = await run
    assert status == 0, err
    assert len(out.splitlines()) == 2
    paths = [r.path for r in agent.requests if r.method == "GET"]
    assert paths == ["/v1/status/leader", "/v1/kv/k", "/v1/kv/k"]
    blocking = [dict(r.query) for r in agent.requests if r.path == "/v1/kv/k"][1]
    assert parse_go_duration(blocking["wait"]) == 600.0


async def test_address_from_environment(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", agent.address)
    assert (await cli(capsys, "kv", "put", "env", "1"))[:2] == (0, "true\n")


async def test_event_fire_prints_the_id(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    status, out, _ = await cli(capsys, "event", "fire", "deploy", "v1", "-http-addr", agent.address)
    assert status == 0
    events, _ = await client.event.items(name="deploy")
    assert [(e["ID"], e["Payload"]) for e in events] == [(out.strip(), b"v1")]


async def test_watch_once_prints_decoded_json_line(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    await client.kv.put("cfg/a", "1")
    await client.kv.put("cfg/b", b"\xff")
    status, out, _ = await cli(
        capsys, "watch", "keyprefix", "-prefix", "cfg/", "--once", "-http-addr", agent.address
    )
    assert status == 0
    assert out.count("\n") == 1
    values = {e["Key"]: e["Value"] for e in json.loads(out)}
    assert values == {"cfg/a": "1", "cfg/b": {"base64": "/w=="}}


async def test_watch_match_keeps_matching_items(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    await client.catalog.register("n1", "127.0.0.1", service={"Service": "web-api", "Port": 1})
    await client.catalog.register("n1", "127.0.0.1", service={"Service": "db", "Port": 2})
    status, out, _ = await cli(
        capsys, "watch", "services", "--match", "^web", "--once", "--http-addr", agent.address
    )
    assert status == 0
    assert json.loads(out) == {"web-api": []}


def read_text(path: str) -> str:
    return Path(path).read_text()


async def test_exec_gets_json_on_stdin_and_consul_index(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul, tmp_path: Path
) -> None:
    await client.kv.put("cfg/a", "1")
    _, meta = await client.kv.items("cfg/")
    out_file = tmp_path / "handler.out"
    handler = f'cat > {out_file}.json; echo "$CONSUL_INDEX" > {out_file}.index'
    status, _, err = await cli(
        capsys,
        "watch",
        "keyprefix",
        "-prefix",
        "cfg/",
        "--once",
        "--exec",
        handler,
        "-http-addr",
        agent.address,
    )
    assert status == 0, err
    received = json.loads(read_text(f"{out_file}.json"))
    assert [(e["Key"], e["Value"]) for e in received] == [("cfg/a", "1")]
    assert read_text(f"{out_file}.index").strip() == str(meta.index)


async def test_failing_exec_handler_stops_with_exit_1(
    capsys: pytest.CaptureFixture[str], agent: DevAgent
) -> None:
    status, _, err = await cli(
        capsys, "watch", "key", "-key", "k", "--exec", "exit 3", "-http-addr", agent.address
    )
    assert status == 1
    assert err == "consul-streams: error: handler exited with status 3\n"


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line, "the command ended early"
    return line.decode()


async def start_cli(*argv: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("CONSUL_HTTP_ADDR", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consul_streams.cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_watch_streams_diffs_until_count(agent: DevAgent, client: Consul) -> None:
    await client.kv.put("app/a", "1")
    proc = await start_cli(
        "watch",
        "keyprefix",
        "-prefix",
        "app/",
        "--diff",
        "--count",
        "3",
        "-http-addr",
        agent.address,
    )
    first = json.loads(await read_line(proc))
    assert [e["Key"] for e in first["added"]] == ["app/a"]  # the first diff adds everything
    await client.kv.put("app/b", "2")
    added = json.loads(await read_line(proc))
    assert [e["Key"] for e in added["added"]] == ["app/b"]
    assert added["removed"] == added["changed"] == []
    await client.kv.delete("app/a")
    removed = json.loads(await read_line(proc))
    assert [e["Key"] for e in removed["removed"]] == ["app/a"]
    assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_demo_shows_debounced_changes_and_ends_by_itself() -> None:
    proc = await start_cli("demo", "--duration", "2.5")
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("dev agent on http://127.0.0.1:")
    headers = [line for line in lines if line.startswith("[")]
    assert headers, lines
    # Each burst writes four app keys: shown as one change block, never split up.
    first_block = lines[lines.index(headers[0]) + 1 : lines.index(headers[0]) + 5]
    assert [line.split()[1] for line in first_block] == [
        "demo/app/db/host",
        "demo/app/db/port",
        "demo/app/feature/dark_mode",
        "demo/app/version",
    ]
    assert not any("demo/noise/" in line for line in lines)  # filtered by --match
    assert "demo finished" in err.decode()


async def test_watch_debounce_shows_a_burst_as_one_change(agent: DevAgent, client: Consul) -> None:
    proc = await start_cli(
        "watch",
        "keyprefix",
        "-prefix",
        "app/",
        "--debounce",
        "300ms",
        "--count",
        "2",
        "-http-addr",
        agent.address,
    )
    assert json.loads(await read_line(proc)) == []  # the initial view: nothing under app/
    for i in range(5):
        await client.kv.put(f"app/k{i}", str(i))
    burst = json.loads(await read_line(proc))
    assert {e["Key"]: e["Value"] for e in burst} == {f"app/k{i}": str(i) for i in range(5)}
    assert await asyncio.wait_for(proc.wait(), 10) == 0
