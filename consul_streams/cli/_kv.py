"""``consul-streams kv get|put|delete|export|import``: ``consul kv``'s flags, lines and statuses.

The reference is HashiCorp's ``command/kv/{get,put,del,exp,imp}`` (their current messages):
success lines on stdout (``Success! Data written to: KEY``), ``Error! ...`` on stderr and
status 1 for every failure. Values are bytes end to end: ``kv get`` writes a binary value's raw
bytes, and a value given on the command line keeps the bytes of a non-UTF-8 argument.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from typing import Any

from consul_streams.cli._common import add_http_flags, connect, out_bytes, out_line
from consul_streams.cli._goflags import FlagSet, HelpRequested
from consul_streams.cli._parser import UsageError
from consul_streams.exceptions import HTTPError

__all__ = ["kv_flags", "run_kv"]

KV_COMMANDS = ("get", "put", "delete", "export", "import")


def kv_flags(command: str) -> FlagSet:
    """The flags of ``consul kv COMMAND``."""
    f = FlagSet(f"Usage: consul-streams kv {command} [options] " + _ARGS[command])
    if command == "get":
        f.add("base64", "bool", help="base64-encode the value")
        f.add("detailed", "bool", help="print the entry's metadata as well")
        f.add("keys", "bool", help="list the keys under the prefix, up to -separator")
        f.add("recurse", "bool", help="every key under the prefix, as key:value")
        f.add("separator", default="/", help="the separator for -keys (default /)")
    elif command == "put":
        f.add("acquire", "bool", help="acquire the lock for -session")
        f.add("base64", "bool", help="the data is base64-encoded")
        f.add("cas", "bool", help="check-and-set against -modify-index")
        f.add("flags", "uint", 0, help="an unsigned integer stored with the key")
        f.add("modify-index", "uint", 0, help="the ModifyIndex for -cas")
        f.add("release", "bool", help="release the lock held by -session")
        f.add("session", help="the session for -acquire/-release")
    elif command == "delete":
        f.add("cas", "bool", help="check-and-set against -modify-index")
        f.add("modify-index", "uint", 0, help="the ModifyIndex for -cas")
        f.add("recurse", "bool", help="delete every key under the prefix")
    elif command == "import":
        f.add("prefix", default="", help="a prefix prepended to every imported key")
    add_http_flags(f, server=command in ("get", "export"))
    return f


_ARGS = {
    "get": "[KEY_OR_PREFIX]",
    "put": "KEY [DATA]",
    "delete": "KEY_OR_PREFIX",
    "export": "[PREFIX]",
    "import": "[DATA]",
}


def _key(rest: list[str], empty_ok: bool) -> str:
    if len(rest) > 1:
        raise UsageError(f"Too many arguments (expected 1, got {len(rest)})")
    key = rest[0] if rest else ""
    # consul's "nice thing to do": keys cannot start with /, so strip one for the user.
    if key.startswith("/"):
        key = key[1:]
    if not key and not empty_ok:
        raise UsageError("Error! Missing KEY argument")
    return key


def _read_data(data: str) -> bytes:
    """consul's dataFromArgs: ``@file`` reads a file, ``-`` reads stdin, else the text itself."""
    if data.startswith("@"):
        try:
            with open(data[1:], "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise UsageError(f"Error! Failed to read file: {exc.strerror}: {data[1:]}") from None
    if data == "-":
        try:
            return sys.stdin.buffer.read()
        except (OSError, AttributeError, ValueError) as exc:
            raise UsageError(f"Error! Failed to read stdin: {exc}") from None
    return os.fsencode(data)  # a non-UTF-8 argument keeps its bytes, as in Go


def _detailed(entry: dict[str, Any], b64: bool, keys_only: bool = False) -> bytes:
    """prettyKVPair: a tabwriter table (minwidth 0, tabwidth 2, padding 6, spaces); with
    ``keys_only`` no Value row, and the last row keeps its newline (as in kv_get.go)."""
    rows: list[tuple[str, bytes]] = [
        ("CreateIndex", str(entry["CreateIndex"]).encode()),
        ("Flags", str(entry["Flags"]).encode()),
        ("Key", entry["Key"].encode()),
        ("LockIndex", str(entry["LockIndex"]).encode()),
        ("ModifyIndex", str(entry["ModifyIndex"]).encode()),
        ("Session", (entry.get("Session") or "-").encode()),
    ]
    for name in ("Partition", "Namespace"):
        if entry.get(name):
            rows.append((name, str(entry[name]).encode()))
    if not keys_only:
        value = bytes(entry["Value"])
        rows.append(("Value", base64.b64encode(value) if b64 else value))
    width = max(len(name) for name, _ in rows) + 6
    table = b"\n".join(name.ljust(width).encode() + cell for name, cell in rows)
    return table + b"\n" if keys_only else table


async def _get(v: dict[str, Any], rest: list[str]) -> int:
    key = _key(rest, empty_ok=v["recurse"] or v["keys"])
    async with connect(v) as client:
        if v["keys"] and v["recurse"]:
            # every key under the prefix (no separator), -detailed without the values
            entries, _ = await client.kv.items(key)
            for i, entry in enumerate(entries):
                if v["detailed"]:
                    out_bytes(_detailed(dict(entry), False, keys_only=True) + b"\n")
                    if i < len(entries) - 1:
                        out_line("")
                else:
                    out_line(entry["Key"])
            return 0
        if v["keys"]:
            keys, _ = await client.kv.keys(key, separator=v["separator"] or None)
            for k in keys:
                out_line(k)
            return 0
        if v["recurse"]:
            entries, _ = await client.kv.items(key)
            for i, entry in enumerate(entries):
                value = bytes(entry["Value"])
                if v["detailed"]:
                    out_bytes(_detailed(dict(entry), v["base64"]) + b"\n")
                    if i < len(entries) - 1:
                        out_line("")
                else:
                    shown = base64.b64encode(value) if v["base64"] else value
                    out_bytes(entry["Key"].encode() + b":" + shown + b"\n")
            return 0
        one, _ = await client.kv.get(key)
        if one is None:
            raise UsageError(f"Error! No key exists at: {key}")
        if v["detailed"]:
            out_bytes(_detailed(dict(one), v["base64"]) + b"\n")
        else:
            value = bytes(one["Value"])
            out_bytes((base64.b64encode(value) if v["base64"] else value) + b"\n")
        return 0


async def _put(v: dict[str, Any], rest: list[str]) -> int:
    if not rest:
        raise UsageError("Error! Missing KEY argument")
    if len(rest) > 2:
        raise UsageError(f"Error! Too many arguments (expected 1 or 2, got {len(rest)})")
    key = rest[0]
    data = _read_data(rest[1]) if len(rest) == 2 and rest[1] else b""
    if v["base64"]:
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UsageError(f"Error! Cannot base 64 decode data: {exc}") from None
    if (v["release"] or v["acquire"]) and not v["session"]:
        raise UsageError("Error! Missing -session (required with -acquire and -release)")
    flags = v["flags"] if "flags" in v["_set"] else None
    async with connect(v) as client:
        if v["cas"]:
            # -cas without -modify-index is index 0: write only if the key does not exist.
            if not await client.kv.put(key, data, flags=flags, cas=v["modify_index"]):
                if v["modify_index"] == 0:
                    raise UsageError(
                        f"Error! Did not write to {key}: "
                        "CAS performed with index=0 and key already exists."
                    )
                raise UsageError(f"Error! Did not write to {key}: CAS failed")
            out_line(f"Success! Data written to: {key}")
        elif v["acquire"]:
            if not await client.kv.put(key, data, flags=flags, acquire=v["session"]):
                raise UsageError("Error! Did not acquire lock")
            out_line(f"Success! Lock acquired on: {key}")
        elif v["release"]:
            if not await client.kv.put(key, data, flags=flags, release=v["session"]):
                raise UsageError("Error! Did not release lock")
            out_line(f"Success! Lock released on: {key}")
        else:
            try:
                await client.kv.put(key, data, flags=flags)
            except HTTPError as exc:
                raise UsageError(f"Error! Failed writing data: {exc}") from None
            out_line(f"Success! Data written to: {key}")
    return 0


async def _delete(v: dict[str, Any], rest: list[str]) -> int:
    key = _key(rest, empty_ok=v["recurse"])
    if v["cas"] and v["modify_index"] == 0:
        raise UsageError(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0."
        )
    if v["modify_index"] and not v["cas"]:
        raise UsageError("Cannot specify -modify-index without -cas!")
    if v["recurse"] and v["cas"]:
        raise UsageError("Cannot specify both -cas and -recurse!")
    async with connect(v) as client:
        if v["recurse"]:
            await client.kv.delete(key, recurse=True)
            out_line(f"Success! Deleted keys with prefix: {key}")
        elif v["cas"]:
            if not await client.kv.delete(key, cas=v["modify_index"]):
                raise UsageError(f"Error! Did not delete key {key}: CAS failed")
            out_line(f"Success! Deleted key: {key}")
        else:
            await client.kv.delete(key)
            out_line(f"Success! Deleted key: {key}")
    return 0


async def _export(v: dict[str, Any], rest: list[str]) -> int:
    prefix = _key(rest, empty_ok=True)
    async with connect(v) as client:
        entries, _ = await client.kv.items(prefix)
    exported = [
        {
            "key": e["Key"],
            "flags": e["Flags"],
            "value": base64.b64encode(bytes(e["Value"])).decode("ascii"),
        }
        for e in entries
    ]
    # json.MarshalIndent(exported, "", "\t"); an empty export is Go's "[]"
    out_line(json.dumps(exported, indent="\t") if exported else "[]")
    return 0


async def _import(v: dict[str, Any], rest: list[str]) -> int:
    if not rest:
        raise UsageError("Error! Missing DATA argument")
    if len(rest) > 1:
        raise UsageError(f"Error! Too many arguments (expected 1, got {len(rest)})")
    if not rest[0]:
        raise UsageError("Error! Empty DATA argument")
    raw = _read_data(rest[0])
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("expected a JSON array of {key, flags, value} objects")
    except ValueError as exc:
        raise UsageError(f"Cannot unmarshal data: {exc}") from None
    async with connect(v) as client:
        for entry in entries:
            key = v["prefix"] + str(entry.get("key", ""))
            try:
                value = base64.b64decode(str(entry.get("value") or ""), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise UsageError(f"Error base 64 decoding value for key {key}: {exc}") from None
            flags = entry.get("flags") or 0
            await client.kv.put(key, value, flags=flags)
            out_line(f"Imported: {key}")
    return 0


async def run_kv(argv: list[str]) -> int:
    """``consul-streams kv COMMAND [options] [args]``."""
    if argv and argv[0] in ("-h", "-help", "--help"):
        raise HelpRequested
    if not argv or argv[0] not in KV_COMMANDS:
        given = f" {argv[0]!r}" if argv else ""
        raise UsageError(f"kv: expected a sub-command (get, put, delete, export, import){given}")
    command = argv[0]
    v, rest = kv_flags(command).parse(argv[1:])
    run = {"get": _get, "put": _put, "delete": _delete, "export": _export, "import": _import}
    return await run[command](v, rest)
