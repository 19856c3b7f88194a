"""Flag parsing as Go's ``flag`` package does it, consul's exit codes, and no traceback for any
input (a property test over argv)."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consul_streams.cli import main
from consul_streams.cli._goflags import FlagError, FlagSet, HelpRequested

from ._helpers import run_cli


def flagset() -> FlagSet:
    f = FlagSet("usage")
    f.add("name")
    f.add("recurse", "bool")
    f.add("flags", "uint", 0)
    f.add("tag", "strings")
    return f


@pytest.mark.parametrize(
    "argv",
    [
        ["-name=v", "-recurse", "rest"],
        ["-name", "v", "-recurse=true", "rest"],
        ["--name", "v", "--recurse", "rest"],
        ["--name=v", "-recurse=1", "--", "rest"],
    ],
)
def test_go_flag_forms_are_one_flag(argv: list[str]) -> None:
    """flag.go parseOne: one or two dashes, '=value' or the next argument, bools take '='."""
    values, rest = flagset().parse(argv)
    assert (values["name"], values["recurse"], rest) == ("v", True, ["rest"])


def test_parsing_stops_at_the_first_non_flag() -> None:
    """A handler's own flags stay the handler's; '-' alone is an argument."""
    values, rest = flagset().parse(["-recurse", "cmd", "-name", "x"])
    assert (values["name"], rest) == (None, ["cmd", "-name", "x"])
    assert flagset().parse(["-", "-recurse"])[1] == ["-", "-recurse"]
    assert flagset().parse(["-recurse", "false"])[1] == ["false"]  # bools take no value


def test_repeatable_and_numeric_flags() -> None:
    values, _ = flagset().parse(["-tag", "a", "-tag=b", "-flags", "0x10"])
    assert (values["tag"], values["flags"]) == (("a", "b"), 16)
    assert flagset().parse(["-flags=010"])[0]["flags"] == 8  # Go's leading-zero octal


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-nope"], "flag provided but not defined: -nope"),
        (["-name"], "flag needs an argument: -name"),
        (["-recurse=maybe"], 'invalid boolean value "maybe" for -recurse: parse error'),
        (["-flags=-1"], 'invalid value "-1" for flag -flags: parse error'),
        (["-flags=x"], 'invalid value "x" for flag -flags: parse error'),
        (["---x"], "bad flag syntax: ---x"),
        (["-=x"], "bad flag syntax: -=x"),
    ],
)
def test_go_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        flagset().parse(argv)
    assert str(info.value) == message


def test_help_is_requested_not_an_error() -> None:
    with pytest.raises(HelpRequested):
        flagset().parse(["-h"])


def test_help_marks_our_additions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "-help"]) == 0
    out = capsys.readouterr().out
    assert "  -type=<value>\n" in out
    assert "  -follow [+]\n" in out
    assert "  -shell\n" in out


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        ((), 2, "the following arguments are required: command"),
        (("nope",), 2, "invalid choice: 'nope'"),
        (("dev", "--bind", "example.com"), 2, "--bind: expected an IP address"),
        (("demo", "--duration", "0"), 2, "--duration: expected a positive number"),
        (("watch",), 1, "Watch type must be specified"),
        (("watch", "-type", "bogus"), 1, "Unsupported watch type: bogus"),
        (("watch", "-type", "key"), 1, "Must specify a single key to watch"),
        (("watch", "-type", "keyprefix"), 1, "Must specify a single prefix to watch"),
        (("watch", "-type", "service"), 1, "Must specify a single service to watch"),
        (("watch", "checks", "-service", "a", "-state", "ok"), 1, "Cannot specify service and"),
        (("watch", "-type", "connect_roots"), 1, "Type connect_roots is not supported in the CLI"),
        (("watch", "nodes", "-tag", "x"), 1, "Invalid parameters: [tag]"),
        (("watch", "key", "-key", "k", "-debounce", "soon"), 1, "-debounce: expected a duration"),
        (("watch", "key", "-key", "k", "-max-wait", "1s"), 1, "-max-wait: only valid together"),
        (("watch", "key", "-key", "k", "-wait", "0s"), 1, "-wait: expected a duration above 0s"),
        (("watch", "key", "-key", "k", "-wait", "601s"), 1, "and at most 10m, got '601s'"),
        (("watch", "key", "-key", "/k"), 1, "-key: must not begin with '/'"),
        (("watch", "keyprefix", "-prefix", "a/../b"), 1, "-prefix: must not contain '.' or '..'"),
        (("watch", "keyprefix", "-prefix=", "-match", "("), 1, "-match: invalid regular"),
        (("watch", "key", "-key", "k", "-format", "xml"), 1, "-format: expected consul"),
        (("watch", "key", "-key"), 1, "flag needs an argument: -key"),
        (("kv",), 1, "kv: expected a sub-command"),
        (("kv", "put"), 1, "Error! Missing KEY argument"),
        (("kv", "get"), 1, "Error! Missing KEY argument"),
        (("kv", "get", "a", "b"), 1, "Too many arguments (expected 1, got 2)"),
        (("kv", "put", "a", "b", "c"), 1, "Too many arguments (expected 1 or 2, got 3)"),
        (("kv", "delete", "-modify-index=3", "k"), 1, "Cannot specify -modify-index without -cas!"),
        (("kv", "delete", "-cas", "k"), 1, "Cannot delete a key that does not exist."),
        (("kv", "put", "-base64", "k", "!!"), 1, "Error! Cannot base 64 decode data"),
        (("kv", "import"), 1, "Error! Missing DATA argument"),
    ],
)
def test_bad_input_is_one_line_with_consuls_status(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], status: int, message: str
) -> None:
    """consul: every flag or argument error of watch/kv/event is status 1; ours (dev, demo)
    keep argparse's 2."""
    assert main(list(argv)) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("consul-streams: error: ")
    assert message in err


def test_unreachable_agent_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    addr = f"127.0.0.1:{unused_tcp_port}"
    assert main(["watch", "-type=key", "-key=k", "-http-addr", addr]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"Error connecting to Consul agent at {addr}" in err


def test_token_never_printed_in_errors(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    addr = f"127.0.0.1:{unused_tcp_port}"
    assert main(["watch", "-type=nodes", "-token", "s3cret-token", "-http-addr", addr]) == 1
    assert "s3cret-token" not in capsys.readouterr().err


def test_malformed_address_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "::::")
    assert main(["kv", "get", "k"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "CONSUL_HTTP_ADDR" in err


async def test_non_utf8_arguments_end_in_one_line(unused_tcp_port: int) -> None:
    """A key that is not UTF-8 is refused (one line, status 1); a surrogate-escaped argv is
    what Python makes of such bytes."""
    key = os.fsdecode(b"k\xff")
    status, out, err = await run_cli("kv", "get", key, "-http-addr", f"127.0.0.1:{unused_tcp_port}")
    assert (status, out) == (1, b"")
    assert err.count(b"\n") == 1
    assert b"Traceback" not in err


_WORDS = [
    "watch",
    "kv",
    "event",
    "get",
    "put",
    "delete",
    "export",
    "import",
    "-type",
    "key",
    "keyprefix",
    "service",
    "checks",
    "event",
    "-key",
    "-prefix",
    "-recurse",
    "-keys",
    "-cas",
    "-modify-index",
    "-flags",
    "-base64",
    "-detailed",
    "-passingonly",
    "-shell=false",
    "-name",
    "-tag",
    "-http-addr",
    "-token-file",
    "-wait",
    "-debounce",
    "--",
    "-",
    "@",
    "=",
    "::::",
    "\udcff",
    "-h",
]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(["watch", "kv", "event"]),
    words=st.lists(
        st.one_of(st.sampled_from(_WORDS), st.text(string.printable + "\udcff\u00e9", max_size=6)),
        max_size=7,
    ),
)
def test_no_argv_ends_in_a_traceback(
    command: str,
    words: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unused_tcp_port: int,
) -> None:
    """Whatever the arguments, the command returns a status and says at most one error line
    (the agent address points at a closed port, so nothing runs for long)."""
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{unused_tcp_port}")
    monkeypatch.delenv("CONSUL_HTTP_TOKEN_FILE", raising=False)
    argv = [command, *words]
    if "-http-addr" in argv:
        argv = [w for w in argv if w != "-http-addr"]
    status = main(argv)
    err = capsys.readouterr().err
    assert status in (0, 1), (argv, err)
    assert "Traceback" not in err
    assert err.count("\n") <= 1, (argv, err)
