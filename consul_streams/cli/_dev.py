"""``consul-streams dev``: the embedded dev agent, started with ``consul agent -dev``'s flags.

Every flag takes Consul's spelling with one dash or two (``-node n``, ``--node n``,
``-node=n``). Two spellings keep this command's earlier meaning and are documented aliases:
``--port`` is ``-http-port`` and ``--bind`` (two dashes) is ``-client``, the HTTP address;
``-bind`` (one dash) is Consul's cluster bind address, the node's address in the catalog.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from consul_streams.cli._errors import UsageError

__all__ = ["add_dev_parser", "run_dev_command"]

#: Default HTTP port of ``consul-streams dev`` when neither a flag nor a config file sets one.
DEFAULT_HTTP_PORT = 8500
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _go_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``, as the flag package parses ``-dev=true``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    return value


def _flag(p: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    p.add_argument(f"-{name}", f"--{name}", **kwargs)


def add_dev_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``dev`` sub-command (``sub`` is the parent's ``add_subparsers()`` object)."""
    dev: argparse.ArgumentParser = sub.add_parser(
        "dev",
        help="run the embedded Consul-compatible dev agent (takes consul agent -dev's flags)",
        description="Run the embedded dev agent. Flags take consul agent's spellings; flags "
        "win over -config-file/-config-dir (JSON). See docs/dev-agent.md.",
    )
    bool_flag: dict[str, Any] = {"nargs": "?", "const": True, "type": _go_bool, "metavar": "BOOL"}
    _flag(dev, "dev", dest="dev_mode", default=None, help="dev mode (always on)", **bool_flag)
    _flag(dev, "node", dest="node_name", metavar="NAME", help="node name (default: host name)")
    _flag(dev, "datacenter", dest="datacenter", metavar="DC", help="datacenter (default dc1)")
    _flag(
        dev,
        "client",
        dest="client_addr",
        metavar="ADDR",
        help="HTTP address (default 127.0.0.1; 0.0.0.0 also listens beyond this machine)",
    )
    _flag(dev, "http-port", dest="http_port", type=_port, metavar="PORT", help="default 8500")
    dev.add_argument(
        "-bind",
        dest="bind_addr",
        metavar="ADDR",
        help="cluster address: the node's Address in the catalog (default 127.0.0.1)",
    )
    dev.add_argument(
        "--bind",
        dest="legacy_bind",
        metavar="ADDR",
        help="alias of -client (this command's earlier spelling)",
    )
    dev.add_argument(
        "--port",
        dest="legacy_port",
        type=_port,
        metavar="PORT",
        help="alias of -http-port (this command's earlier spelling)",
    )
    _flag(
        dev,
        "node-meta",
        dest="node_meta",
        action="append",
        metavar="KEY:VALUE",
        help="node metadata (repeatable)",
    )
    _flag(
        dev,
        "config-file",
        dest="config_file",
        action="append",
        metavar="PATH",
        help="JSON config file (repeatable)",
    )
    _flag(
        dev,
        "config-dir",
        dest="config_dir",
        action="append",
        metavar="DIR",
        help="directory of JSON config files (repeatable)",
    )
    _flag(dev, "data-dir", dest="data_dir", metavar="PATH", help="accepted; state is in memory")
    _flag(dev, "pid-file", dest="pid_file", metavar="PATH", help="write the process id here")
    _flag(dev, "log-level", dest="log_level", metavar="LEVEL", help="trace|debug|info|warn|error")
    _flag(
        dev,
        "enable-script-checks",
        dest="enable_script_checks",
        default=None,
        help="allow checks with Args (default true; they are stored, never run)",
        **bool_flag,
    )
    _flag(
        dev,
        "commit-delay",
        dest="commit_delay",
        metavar="DURATION",
        help="time a Raft-backed write takes (default 10ms; 0 for none)",
    )
    return dev


#: Settings keyword -> the flag that sets it, to name the flag in errors.
_FLAG_OF = {
    "node_name": "-node",
    "datacenter": "-datacenter",
    "client_addr": "-client",
    "http_port": "-http-port",
    "bind_addr": "-bind",
    "node_meta": "-node-meta",
    "data_dir": "-data-dir",
    "pid_file": "-pid-file",
    "log_level": "-log-level",
    "commit_delay": "-commit-delay",
    "enable_script_checks": "-enable-script-checks",
}


def dev_settings(args: argparse.Namespace) -> Any:
    """The resolved :class:`~consul_streams.testing._settings.AgentSettings` of ``args``."""
    from consul_streams.exceptions import InvalidArgument
    from consul_streams.testing._settings import parse_node_meta, resolve_settings

    if args.legacy_bind is not None and args.client_addr is not None:
        raise UsageError("--bind is an alias of -client: give one of them")
    if args.legacy_port is not None and args.http_port is not None:
        raise UsageError("--port is an alias of -http-port: give one of them")
    client = args.client_addr if args.client_addr is not None else args.legacy_bind
    port = args.http_port if args.http_port is not None else args.legacy_port
    explicit: dict[str, Any] = {
        "node_name": args.node_name,
        "datacenter": args.datacenter,
        "client_addr": client,
        "http_port": port,
        "bind_addr": args.bind_addr,
        "data_dir": args.data_dir,
        "pid_file": args.pid_file,
        "log_level": args.log_level,
        "commit_delay": args.commit_delay,
        "enable_script_checks": args.enable_script_checks,
    }
    try:
        if args.node_meta:
            explicit["node_meta"] = parse_node_meta(args.node_meta, "node_meta")
        settings = resolve_settings(
            config_file=args.config_file, config_dir=args.config_dir, **explicit
        )
    except InvalidArgument as exc:
        flag = _FLAG_OF.get(exc.parameter)
        if flag == "-client" and args.client_addr is None:
            flag = "--bind"
        if flag == "-http-port" and args.http_port is None:
            flag = "--port"
        detail = str(exc).split(": ", 1)[1]
        if flag is None and exc.parameter in ("config_file", "config_dir"):
            flag = "-" + exc.parameter.replace("_", "-")
        where = flag if flag is not None else exc.parameter
        raise UsageError(f"{where}: {detail}") from None
    if settings.http_port is None:
        settings.http_port = DEFAULT_HTTP_PORT
    return settings


def run_dev_command(args: argparse.Namespace) -> int:
    """Serve the embedded dev agent until interrupted."""
    from consul_streams.testing._settings import is_loopback

    settings = dev_settings(args)
    if not is_loopback(settings.client_addr):
        print(
            f"consul-streams: warning: the dev agent on {settings.client_addr} is reachable "
            "from other machines"
            + ("" if settings.enforced_policy == "deny" else " and has no ACLs"),
            file=sys.stderr,
        )
    from consul_streams.testing._run import run_settings

    run_settings(settings)  # prints its address; returns on Ctrl-C or SIGTERM
    return 0
