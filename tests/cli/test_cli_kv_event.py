"""``consul-streams kv ...`` and ``event`` against the dev agent, line for line as HashiCorp's
``command/kv/{get,put,delete,export,import}`` and ``command/event/event.go`` print them."""

from __future__ import annotations

from pathlib import Path

import pytest

from consul_streams import Consul
from consul_streams.testing import DevAgent

from ._helpers import cli, run_cli


async def test_put_get_delete_print_consul_lines(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    addr = ("-http-addr", agent.address)
    assert await cli(capsys, "kv", "put", *addr, "a/b", "hello") == (
        0,
        "Success! Data written to: a/b\n",
        "",
    )
    entry, _ = await client.kv.get("a/b")
    assert entry is not None
    assert entry["Value"] == b"hello"
    assert (await cli(capsys, "kv", "get", *addr, "a/b"))[:2] == (0, "hello\n")
    assert (await cli(capsys, "kv", "get", *addr, "/a/b"))[:2] == (0, "hello\n")  # "/" stripped
    assert (await cli(capsys, "kv", "get", *addr, "-base64", "a/b"))[:2] == (0, "aGVsbG8=\n")
    assert (await cli(capsys, "kv", "delete", *addr, "a/b"))[:2] == (
        0,
        "Success! Deleted key: a/b\n",
    )
    status, out, err = await cli(capsys, "kv", "get", *addr, "a/b")
    assert (status, out) == (1, "")
    assert err == "consul-streams: error: Error! No key exists at: a/b\n"


async def test_put_reads_a_file_and_stdin(agent: DevAgent, client: Consul, tmp_path: Path) -> None:
    """put.go dataFromArgs: @path reads the file, - reads stdin, -x is literal text."""
    source = tmp_path / "value.bin"
    source.write_bytes(b"\x00\xffbinary")
    addr = ("-http-addr", agent.address)
    assert (await run_cli("kv", "put", *addr, "f", f"@{source}"))[0] == 0
    assert (await run_cli("kv", "put", *addr, "s", "-", stdin=b"from stdin"))[0] == 0
    assert (await run_cli("kv", "put", *addr, "d", "-x"))[0] == 0
    values = {e["Key"]: e["Value"] for e in (await client.kv.items(""))[0]}
    assert values == {"f": b"\x00\xffbinary", "s": b"from stdin", "d": b"-x"}
    status, _, err = await run_cli("kv", "put", *addr, "g", f"@{tmp_path / 'missing'}")
    assert status == 1
    assert err.decode().startswith("consul-streams: error: Error! Failed to read file:")


async def test_get_of_a_binary_value_writes_the_raw_bytes(agent: DevAgent, client: Consul) -> None:
    """get.go: c.UI.Info(string(pair.Value)), no re-encoding."""
    await client.kv.put("bin", b"\xff\x00\xfe")
    status, out, _ = await run_cli("kv", "get", "-http-addr", agent.address, "bin")
    assert (status, out) == (0, b"\xff\x00\xfe\n")
    status, out, _ = await run_cli("kv", "get", "-recurse", "-http-addr", agent.address)
    assert out == b"bin:\xff\x00\xfe\n"


async def test_get_detailed_is_consuls_table(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """get.go prettyKVPair: tabwriter(minwidth 0, tabwidth 2, padding 6, ' ')."""
    await client.kv.put("a", "x", flags=42)
    entry, _ = await client.kv.get("a")
    assert entry is not None
    status, out, _ = await cli(capsys, "kv", "get", "-detailed", "-http-addr", agent.address, "a")
    assert status == 0
    idx = entry["ModifyIndex"]
    assert out == (
        f"CreateIndex      {idx}\nFlags            42\nKey              a\n"
        f"LockIndex        0\nModifyIndex      {idx}\nSession          -\nValue            x\n"
    )


async def test_get_keys_with_separator(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    for key in ("app/a", "app/b/c", "other"):
        await client.kv.put(key, "")
    addr = ("-http-addr", agent.address)
    assert (await cli(capsys, "kv", "get", "-keys", *addr, "app/"))[1] == "app/a\napp/b/\n"
    argv = ("kv", "get", "-keys", "-separator=", *addr)
    assert (await cli(capsys, *argv))[1] == "app/a\napp/b/c\nother\n"
    every = ("kv", "get", "-keys", "-recurse", *addr, "app/")  # kv_get.go: every key, no cut
    assert (await cli(capsys, *every))[1] == "app/a\napp/b/c\n"


async def test_put_cas_flags_and_locks(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    addr = ("-http-addr", agent.address)
    await client.kv.put("k", "v")
    entry, _ = await client.kv.get("k")
    assert entry is not None
    status, _, err = await cli(capsys, "kv", "put", "-cas", "-modify-index=1", *addr, "k", "w")
    assert (status, err) == (1, "consul-streams: error: Error! Did not write to k: CAS failed\n")
    idx = str(entry["ModifyIndex"])
    status, out, _ = await cli(capsys, "kv", "put", "-cas", "-modify-index", idx, *addr, "k", "w")
    assert (status, out) == (0, "Success! Data written to: k\n")
    status, _, err = await cli(capsys, "kv", "put", "-cas", *addr, "k", "w")  # index 0
    assert (status, err) == (
        1,
        "consul-streams: error: Error! Did not write to k: "
        "CAS performed with index=0 and key already exists.\n",
    )
    assert (await cli(capsys, "kv", "put", "-cas", *addr, "new", "w"))[0] == 0
    assert (await cli(capsys, "kv", "put", "-flags=7", "-base64", *addr, "k", "AQI="))[0] == 0
    entry, _ = await client.kv.get("k")
    assert entry is not None
    assert (entry["Flags"], entry["Value"]) == (7, b"\x01\x02")
    session = await client.session.create(ttl="30s")
    sid = session["ID"] if isinstance(session, dict) else str(session)
    status, out, _ = await cli(capsys, "kv", "put", "-acquire", "-session", sid, *addr, "l", "x")
    assert (status, out) == (0, "Success! Lock acquired on: l\n")
    held, _ = await client.kv.get("l")
    assert held is not None
    assert held.get("Session") == sid
    status, out, _ = await cli(capsys, "kv", "put", "-release", "-session", sid, *addr, "l")
    assert (status, out) == (0, "Success! Lock released on: l\n")
    status, _, err = await cli(capsys, "kv", "put", "-acquire", *addr, "l")
    assert status == 1
    assert "Missing -session (required with -acquire and -release)" in err


async def test_delete_cas_and_recurse(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    addr = ("-http-addr", agent.address)
    for key in ("p/a", "p/b", "q"):
        await client.kv.put(key, "1")
    entry, _ = await client.kv.get("q")
    assert entry is not None
    status, _, err = await cli(capsys, "kv", "delete", "-cas", "-modify-index=1", *addr, "q")
    assert (status, err) == (1, "consul-streams: error: Error! Did not delete key q: CAS failed\n")
    idx = f"-modify-index={entry['ModifyIndex']}"
    assert (await cli(capsys, "kv", "delete", "-cas", idx, *addr, "q"))[:2] == (
        0,
        "Success! Deleted key: q\n",
    )
    assert (await cli(capsys, "kv", "delete", "-recurse", *addr, "p/"))[:2] == (
        0,
        "Success! Deleted keys with prefix: p/\n",
    )
    assert (await client.kv.items(""))[0] == []
    status, _, err = await cli(capsys, "kv", "delete", "-cas", "-recurse", "-modify-index=2", "x")
    assert (status, err) == (1, "consul-streams: error: Cannot specify both -cas and -recurse!\n")


async def test_export_then_import_round_trips(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul, tmp_path: Path
) -> None:
    """export.go: MarshalIndent of {key, flags, value(base64)} with a tab; import reads it back."""
    await client.kv.put("x/a", b"\xff", flags=3)
    await client.kv.put("x/b", "text")
    addr = ("-http-addr", agent.address)
    status, out, _ = await cli(capsys, "kv", "export", *addr, "x/")
    assert status == 0
    assert out.startswith('[\n\t{\n\t\t"key": "x/a",\n\t\t"flags": 3,\n\t\t"value": "/w=="\n')
    dump = tmp_path / "dump.json"
    dump.write_text(out)
    await client.kv.delete("x/", recurse=True)
    status, out, _ = await cli(capsys, "kv", "import", "-prefix=y/", *addr, f"@{dump}")
    assert (status, out) == (0, "Imported: y/x/a\nImported: y/x/b\n")
    values = {e["Key"]: (e["Value"], e["Flags"]) for e in (await client.kv.items("y/"))[0]}
    assert values == {"y/x/a": (b"\xff", 3), "y/x/b": (b"text", 0)}
    status, _, err = await cli(capsys, "kv", "import", *addr, "not json")
    assert status == 1
    assert err.startswith("consul-streams: error: Cannot unmarshal data:")


async def test_event_fires_with_filters_and_prints_the_id(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, client: Consul
) -> None:
    """event.go: -name, -node/-service/-tag regexps, payload, "Event ID: <id>"."""
    argv = ["event", "-name", "deploy", "-service", "web", "-tag", "prod", "-node", "n.*"]
    status, out, _ = await cli(capsys, *argv, "-http-addr", agent.address, "v1")
    assert status == 0
    assert out.startswith("Event ID: ")
    fire = [r for r in agent.requests if r.path == "/v1/event/fire/deploy"]
    assert [dict(r.query) for r in fire] == [{"node": "n.*", "service": "web", "tag": "prod"}]
    await cli(capsys, "event", "-name", "deploy", "-http-addr", agent.address, "v2")
    events, _ = await client.event.items(name="deploy")
    assert [e["Payload"] for e in events] == [b"v2"]  # the filtered one never reached this node
    # our earlier form still works
    status, out, _ = await cli(capsys, "event", "fire", "deploy", "v3", "-http-addr", agent.address)
    assert (status, out.startswith("Event ID: ")) == (0, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("event",), "Event name must be specified"),
        (("event", "-name", "x", "-tag", "t"), "Cannot provide tag filter without service filter."),
        (("event", "-name", "x", "-node", "("), "Failed to compile node filter regexp:"),
        (("event", "-name", "x", "a", "b"), "Too many command line arguments."),
    ],
)
async def test_event_rejects_what_consul_rejects(
    capsys: pytest.CaptureFixture[str], agent: DevAgent, argv: tuple[str, ...], message: str
) -> None:
    status, out, err = await cli(capsys, *argv, "-http-addr", agent.address)
    assert (status, out) == (1, "")
    assert err.startswith("consul-streams: error: " + message)
    assert agent.requests == []
