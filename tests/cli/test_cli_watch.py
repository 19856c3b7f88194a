"""``consul-streams watch`` against the dev agent, checked against HashiCorp's ``consul watch``
(``command/watch/watch.go``, ``api/watch/funcs.go``, ``api/watch/plan.go``)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from consul_streams import Consul
from consul_streams._rules import parse_go_duration
from consul_streams.testing import DevAgent

from ._helpers import cli, finish, read_line, run_cli, start_cli

KV_ORDER = ["Key", "CreateIndex", "ModifyIndex", "LockIndex", "Flags", "Value", "Session"]


async def test_no_handler_prints_the_first_result_indented_and_exits_0(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """watch.go: no child -> json.MarshalIndent(data, "", "    "), then wp.Stop(), status 0.
    api.KVPair's field order, Value base64, Session present even when empty."""
    await client.kv.put("cfg/a", "1")
    await client.kv.put("cfg/b", b"\xff")
    status, out, err = await cli(
        capsys, "watch", "-type", "keyprefix", "-prefix", "cfg/", "-http-addr", agent.address
    )
    assert status == 0, err
    entries = json.loads(out)
    assert [list(e) for e in entries] == [KV_ORDER, KV_ORDER]
    assert [base64.b64decode(e["Value"]) for e in entries] == [b"1", b"\xff"]
    assert entries[0]["Session"] == ""
    assert out.startswith('[\n    {\n        "Key": "cfg/a",\n')


@pytest.mark.parametrize(
    "form",
    [
        ("-type", "key", "-key", "k"),
        ("-type=key", "-key=k"),
        ("--type", "key", "--key=k"),
        ("key", "-key", "k"),  # our positional type
    ],
)
async def test_flag_spellings_are_go_flag_forms(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul, form: tuple[str, ...]
) -> None:
    await client.kv.put("k", "v")
    status, out, err = await cli(capsys, "watch", *form, "-http-addr", agent.address)
    assert status == 0, err
    assert base64.b64decode(json.loads(out)["Value"]) == b"v"


async def test_missing_key_prints_null(capsys: pytest.CaptureFixture[str], agent: DevAgent) -> None:
    """funcs.go keyWatch: a missing key hands the handler nil, printed as null."""
    status, out, _ = await cli(
        capsys, "watch", "-type=key", "-key=none", "-http-addr", agent.address
    )
    assert (status, out) == (0, "null\n")


async def test_passingonly_takes_consul_forms(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """-passingonly is a string flag parsed with strconv.ParseBool: =true, a separate value,
    and (our addition) bare."""
    await client.catalog.register("n1", "127.0.0.1", service={"Service": "web", "Port": 1})
    for form in (("-passingonly=true",), ("-passingonly", "false"), ("-passingonly",)):
        argv = ["watch", "-type", "service", "-service", "web", *form]
        status, out, err = await cli(capsys, *argv, "-http-addr", agent.address)
        assert status == 0, (form, err)
        assert [e["Service"]["Service"] for e in json.loads(out)] == ["web"]
        passing = [r for r in agent.requests if r.path == "/v1/health/service/web"][-1]
        assert ("passing" in dict(passing.query)) == (form != ("-passingonly", "false"))
    status, _, err = await cli(capsys, "watch", "-type=service", "-service=web", "-passingonly=x")
    assert status == 1
    assert 'invalid boolean value "x" for -passingonly' in err


async def test_event_watch_first_run_delivers_buffered_events(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """funcs.go eventWatch: the first run has no last index, so every buffered event is new."""
    await client.event.fire("deploy", b"v1")
    await client.event.fire("other", b"x")
    status, out, _ = await cli(
        capsys, "watch", "-type", "event", "-name", "deploy", "-http-addr", agent.address
    )
    assert status == 0
    events = json.loads(out)
    assert [(e["Name"], base64.b64decode(e["Payload"])) for e in events] == [("deploy", b"v1")]
    assert list(events[0]) == [
        "ID",
        "Name",
        "Payload",
        "NodeFilter",
        "ServiceFilter",
        "TagFilter",
        "Version",
        "LTime",
    ]


async def test_a_consul_watch_handler_runs_unchanged(
    agent: DevAgent, client: Consul, tmp_path: Path
) -> None:
    """A handler written for consul watch: reads the JSON on stdin, base64-decodes Value and
    reads CONSUL_INDEX; given as trailing arguments, run by $SHELL -c."""
    await client.kv.put("app/flag", "on")
    _, meta = await client.kv.get("app/flag")
    script = tmp_path / "handler.py"
    script.write_text(
        "import base64, json, os, sys\n"
        "pair = json.load(sys.stdin)\n"
        "print(base64.b64decode(pair['Value']).decode(), os.environ['CONSUL_INDEX'],\n"
        "      repr(pair['Session']), flush=True)\n"
    )
    argv = ["watch", "-type", "key", "-key", "app/flag", "-http-addr", agent.address]
    proc = await start_cli(*argv, sys.executable, str(script))
    assert await read_line(proc) == f"on {meta.index} ''\n"  # the handler's stdout
    proc.terminate()
    assert await finish(proc) == 0


async def test_shell_false_runs_the_arguments_without_a_shell(
    agent: DevAgent, client: Consul, tmp_path: Path
) -> None:
    """-shell=false: agent.ExecSubprocess(args); '$HOME' reaches the child literally."""
    out = tmp_path / "argv"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.argv[1]); sys.exit(3)"
    status, _, err = await run_cli(
        "watch",
        "-type=key",
        "-key=k",
        "-shell=false",
        "-http-addr",
        agent.address,
        sys.executable,
        "-c",
        code,
        "$HOME",
    )
    assert out.read_text() == "$HOME"
    assert status == 1  # a failing handler stops the watch with errExit = 1
    assert err.decode() == "consul-streams: error: Error executing handler: exit status 3\n"


async def test_sigterm_is_forwarded_to_the_handler_and_awaited(
    agent: DevAgent, client: Consul, tmp_path: Path
) -> None:
    """agent.ForwardSignals: the running handler gets the signal; the command waits for it."""
    done = tmp_path / "done"
    handler = (
        f"trap 'echo term > {done}; exit 0' TERM; echo started; while true; do sleep 0.05; done"
    )
    proc = await start_cli(
        "watch", "-type=key", "-key=k", "-http-addr", agent.address, "-exec", handler
    )
    assert await read_line(proc) == "started\n"  # the handler's stdout is the command's
    proc.send_signal(signal.SIGTERM)
    assert await finish(proc) == 0
    assert done.read_text() == "term\n"  # the handler finished before the command exited


async def test_follow_streams_consul_json_lines(agent: DevAgent, client: Consul) -> None:
    proc = await start_cli("watch", "-type=key", "-key=k", "-follow", "-http-addr", agent.address)
    assert json.loads(await read_line(proc)) is None
    await client.kv.put("k", "1")
    line = json.loads(await read_line(proc))
    assert base64.b64decode(line["Value"]) == b"1"
    proc.terminate()
    assert await finish(proc) == 0


async def test_watch_validates_then_probes_then_sends_the_wait(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """The leader probe is the first request; the blocking read carries the -wait given."""
    argv = ["watch", "key", "-key", "k", "-wait", "10m", "-count", "2"]
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


async def test_decoded_format_and_match_are_our_additions(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    await client.catalog.register("n1", "127.0.0.1", service={"Service": "web-api", "Port": 1})
    await client.catalog.register("n1", "127.0.0.1", service={"Service": "db", "Port": 2})
    status, out, _ = await cli(
        capsys, "watch", "services", "--match", "^web", "--http-addr", agent.address
    )
    assert status == 0
    assert json.loads(out) == {"web-api": []}
    await client.kv.put("cfg/b", b"\xff")
    await client.kv.put("cfg/a", "1")
    argv = ["watch", "keyprefix", "-prefix", "cfg/", "-format", "decoded", "-follow", "-once"]
    status, out, _ = await cli(capsys, *argv, "-http-addr", agent.address)
    assert out.count("\n") == 1
    values = {e["Key"]: e["Value"] for e in json.loads(out)}
    assert values == {"cfg/a": "1", "cfg/b": {"base64": "/w=="}}


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
    assert await finish(proc) == 0


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
        "-format",
        "decoded",
        "-http-addr",
        agent.address,
    )
    assert json.loads(await read_line(proc)) == []  # the initial view: nothing under app/
    for i in range(5):
        await client.kv.put(f"app/k{i}", str(i))
    burst = json.loads(await read_line(proc))
    assert {e["Key"]: e["Value"] for e in burst} == {f"app/k{i}": str(i) for i in range(5)}
    assert await finish(proc) == 0


async def test_demo_shows_debounced_changes_and_ends_by_itself() -> None:
    status, out, err = await run_cli("demo", "--duration", "2.5")
    assert status == 0, err.decode()
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


# --- failures (issue 11's CLI part) -------------------------------------------------------


async def test_bad_filter_exits_non_zero_with_one_line(agent: DevAgent) -> None:
    """A filter Consul cannot parse never heals: no retry loop, one line, status 1."""
    status, out, err = await run_cli(
        "watch", "-type", "services", "-filter", "bad ((", "-http-addr", agent.address
    )
    assert (status, out) == (1, b"")
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert "Failed to create boolean expression evaluator" in lines[0]


async def test_agent_down_logs_a_warning_on_the_first_failed_attempt(tmp_path: Path) -> None:
    """consul watch logs every failed attempt; the first one shows on stderr at once."""
    agent = DevAgent(jitter=False)
    await agent.start()
    try:
        proc = await start_cli(
            "watch", "-type=key", "-key=k", "-follow", "-http-addr", agent.address
        )
        assert json.loads(await read_line(proc)) is None
        await agent.stop()
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 15)).decode()
        assert line.startswith("consul-streams: warning: ")
        assert agent.address in line
        proc.terminate()
        assert await finish(proc) == 0
    finally:
        await agent.stop()


@pytest.mark.parametrize(
    ("path", "argv"),
    [
        ("/v1/health/service/web", ("-type=service", "-service=web")),
        ("/v1/catalog/nodes", ("-type=nodes",)),
        ("/v1/health/state/any", ("-type=checks",)),
        ("/v1/catalog/services", ("-type=services",)),
    ],
)
async def test_other_types_print_the_http_apis_json_in_its_order(
    capsys: pytest.CaptureFixture[str],
    agent: DevAgent,
    client: Consul,
    path: str,
    argv: tuple[str, ...],
) -> None:
    """What the agent answered, field for field and in order (only KV and events re-encode)."""
    await client.agent.service_register("web", tags=["a"], port=80)
    async with aiohttp.ClientSession() as session, session.get(agent.url + path) as response:
        raw = json.loads(await response.read())
    status, out, _ = await cli(capsys, "watch", *argv, "-http-addr", agent.address)
    assert status == 0
    assert json.dumps(json.loads(out)) == json.dumps(raw)


async def test_checks_watch_filters_on_service_tags(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """funcs.go checksWatch: -tag narrows the checks to services carrying every tag."""
    ttl = {"TTL": "30s"}
    await client.agent.service_register("web", tags=["prod"], port=80, check=ttl)
    await client.agent.service_register("db", tags=["dev"], port=81, check=ttl)
    argv = ["watch", "-type=checks", "-tag", "prod", "-http-addr", agent.address]
    status, out, err = await cli(capsys, *argv)
    assert status == 0, err
    assert [c["ServiceName"] for c in json.loads(out)] == ["web"]
