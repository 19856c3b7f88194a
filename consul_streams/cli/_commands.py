"""The one-shot sub-commands: ``kv get/put/delete``, ``event fire`` (``dev``: ``_dev.py``)."""

from __future__ import annotations

import argparse
import sys

from consul_streams.cli._common import connect, render

__all__ = ["run_event", "run_kv"]


async def run_kv(args: argparse.Namespace) -> int:
    """``kv get`` prints the value (text), ``put`` and ``delete`` print ``true``/``false``."""
    async with connect(args) as client:
        if args.kv_command == "get":
            if args.recurse:
                entries, _ = await client.kv.items(args.key)
                if args.format == "json":
                    print(render(entries, "json"))
                else:
                    for entry in entries:
                        print(f"{entry['Key']}:{bytes(entry['Value']).decode('utf-8', 'replace')}")
                return 0
            one, _ = await client.kv.get(args.key)
            if one is None:
                print(f"consul-streams: error: no key {args.key!r}", file=sys.stderr)
                return 1
            if args.format == "json":
                print(render(one, "json"))
            else:
                sys.stdout.write(bytes(one["Value"]).decode("utf-8", "replace") + "\n")
            return 0
        if args.kv_command == "put":
            value = sys.stdin.buffer.read() if args.value == "-" else args.value.encode()
            ok = await client.kv.put(args.key, value, cas=args.cas, flags=args.flags)
            print("true" if ok else "false")
            return 0 if ok else 1
        ok = await client.kv.delete(args.key, recurse=args.recurse)
        print("true" if ok else "false")
        return 0 if ok else 1


async def run_event(args: argparse.Namespace) -> int:
    """``event fire NAME [PAYLOAD]`` prints the new event's ID."""
    async with connect(args) as client:
        event = await client.event.fire(args.name, args.payload.encode())
        print(event["ID"])
    return 0
