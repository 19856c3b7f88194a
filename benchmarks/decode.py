"""Decode cost of a KV prefix answer: consul_streams, py-consul and the json+base64 floor.

Run: ``.venv/bin/python benchmarks/decode.py`` (``--quick`` for 1k/10k keys and 3 rounds,
``--plot docs/benchmarks-decode.png`` to draw cost against prefix size).

For prefixes of 1,000, 10,000 and 100,000 keys (256-byte values, as Consul sends them), the
client-side CPU of turning one answer body into Python values:

* ``floor``: ``json.loads`` plus ``base64.b64decode`` of every value, hand-written, no checks;
* ``py-consul``: the callback py-consul runs on ``kv.get(prefix, recurse=True)``;
* ``consul_streams``: ``client.kv.items(prefix)``'s decoder (shape-checked, bytes values);
* ``consul_streams + diff``: the same plus the keyed diff against the previous answer (one key
  changed), which is what ``watch(...) | ops.diff()`` does per update;
* ``gunzip``: inflating the same body gzipped (level 6, as Consul's handler does), which a
  client that asks a local agent for gzip pays on top of decoding.

Each round times every contender in rotating order (best of ``--repeat`` runs); the table gives
the median over rounds of each round's ratio to the floor, with the min-max spread.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consul.base import Response as PyConsulResponse
from consul.callback import CB

from benchmarks._common import machine, print_table
from consul_streams._diff import diff_keyed, keyed
from consul_streams._identity import KV_ENTRIES
from consul_streams._query import Response
from consul_streams.endpoints.kv import _decode_entries

Body = tuple[bytes, bytes]  # (previous answer, answer with one key changed)


def answers(keys: int, seed: int = 7) -> Body:
    """Two consecutive answers of a ``keys``-key prefix, as Consul's JSON."""
    rng = random.Random(seed)
    entries = [
        {
            "LockIndex": 0,
            "Key": f"big/{i:06d}",
            "Flags": 0,
            "Value": base64.b64encode(rng.randbytes(256)).decode(),
            "CreateIndex": 10 + i,
            "ModifyIndex": 10 + i,
        }
        for i in range(keys)
    ]
    before = json.dumps(entries).encode()
    changed = dict(entries[keys // 2], Value=base64.b64encode(b"new").decode(), ModifyIndex=10**6)
    entries[keys // 2] = changed
    return before, json.dumps(entries).encode()


def _floor(bodies: Body) -> Callable[[], object]:
    body = bodies[1]

    def run() -> object:
        entries = json.loads(body)
        for entry in entries:
            entry["Value"] = base64.b64decode(entry["Value"])
        return entries

    return run


def _py_consul(bodies: Body) -> Callable[[], object]:
    callback = CB.json(index=True, decode="Value")
    response = PyConsulResponse(200, {"X-Consul-Index": "7"}, bodies[1].decode())
    return lambda: callback(response)


def _ours(bodies: Body) -> Callable[[], object]:
    response = Response(200, {}, bodies[1], "GET", "/v1/kv/big/?recurse")
    return lambda: _decode_entries(response)


def _ours_diff(bodies: Body) -> Callable[[], object]:
    previous = _decode_entries(Response(200, {}, bodies[0]))
    before = keyed(previous, KV_ENTRIES)
    response = Response(200, {}, bodies[1], "GET", "/v1/kv/big/?recurse")

    def run() -> object:
        # ops.diff's work: the previous answer is already keyed, the new one is keyed here.
        change = diff_keyed(before, keyed(_decode_entries(response), KV_ENTRIES), KV_ENTRIES)
        assert len(change.changed) == 1
        return change

    return run


def _gunzip(bodies: Body) -> Callable[[], object]:
    packed = gzip.compress(bodies[1], 6)
    return lambda: gzip.decompress(packed)


CONTENDERS: dict[str, Callable[[Body], Callable[[], object]]] = {
    "floor (json+base64)": _floor,
    "py-consul": _py_consul,
    "consul_streams": _ours,
    "consul_streams + diff": _ours_diff,
    "gunzip (gzip from a local agent)": _gunzip,
}


def best_of(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure(keys: int, rounds: int, repeat: int) -> dict[str, list[float]]:
    """Seconds per decode for every contender, one list entry per round."""
    bodies = answers(keys)
    runs = {name: make(bodies) for name, make in CONTENDERS.items()}
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(best_of(runs[name], repeat))
    return times


def _ratio(values: list[float], floor: list[float]) -> str:
    ratios = [v / f for v, f in zip(values, floor, strict=True)]
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def plot(results: dict[int, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(results)
    for name in CONTENDERS:
        ax.plot(
            sizes,
            [statistics.median(results[n][name]) * 1000 for n in sizes],
            marker="o",
            label=name,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys in the prefix (256-byte values)")
    ax.set_ylabel("CPU ms per answer (median over rounds)")
    ax.set_title("Decoding one KV prefix answer")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="runs per contender per round")
    parser.add_argument("--quick", action="store_true", help="1k and 10k keys, 3 rounds")
    parser.add_argument("--plot", type=Path, help="write a PNG of cost against prefix size")
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    rounds = 3 if args.quick else max(3, args.rounds)
    print(machine())
    results: dict[int, dict[str, list[float]]] = {}
    for keys in sizes:
        times = measure(keys, rounds, args.repeat if keys < 100_000 else 2)
        results[keys] = times
        floor = times["floor (json+base64)"]
        print(f"\n{keys:,} keys, {rounds} rounds (CPU ms per answer; ratio to the floor)")
        rows: list[list[Any]] = [
            [name, f"{statistics.median(values) * 1000:.2f}", _ratio(values, floor)]
            for name, values in times.items()
        ]
        print_table(["contender", "ms", "vs floor (min-max)"], rows)
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
