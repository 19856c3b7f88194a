"""The README Quickstart passes ``mypy --strict``, and its pipe keeps its item types.

Operators are generic over the item, so ``watch(q) | ops.match(...) | ops.debounce(...)`` is
still a stream of ``(value, Meta)``; a pipe that decays to ``Any`` fails the assertions here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TYPED_PIPES = """
from typing import Any
from aiostream.core import Stream
from typing_extensions import assert_type
from consul_streams import Consul, KVEntry, Meta, ops, watch
from consul_streams.ops import Diff


def check(client: Consul) -> None:
    kv = watch(client.kv.items("app/")) | ops.match("^app/") | ops.debounce(0.5)
    assert_type(kv, Stream[tuple[list[KVEntry], Meta]])
    decoded = kv | ops.decode("json") | ops.values()
    assert_type(decoded, Stream[dict[str, Any]])
    services = watch(client.catalog.services()) | ops.throttle("1s") | ops.diff()
    assert_type(services, Stream[tuple[Diff[tuple[str, list[str]]], Meta]])
    one = watch(client.kv.get("k")) | ops.distinct() | ops.diff()
    assert_type(one, Stream[tuple[Diff[KVEntry], Meta]])
"""


def quickstart() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "no python block under ## Quickstart"
    return match.group(1)


def run_mypy(source: str, tmp_path: Path) -> tuple[str, int]:
    api = pytest.importorskip("mypy.api")
    path = tmp_path / "snippet.py"
    path.write_text(source, encoding="utf-8")
    # The project's own cache (from running mypy on the repo) keeps this to seconds.
    cache = ROOT / ".mypy_cache"
    stdout, stderr, status = api.run(
        ["--strict", "--python-version", "3.10", "--cache-dir", str(cache), str(path)]
    )
    return stdout + stderr, status


def test_the_readme_quickstart_passes_mypy_strict(tmp_path: Path) -> None:
    out, status = run_mypy(quickstart(), tmp_path)
    assert status == 0, out


def test_operators_keep_the_item_types_through_the_pipe(tmp_path: Path) -> None:
    out, status = run_mypy(TYPED_PIPES, tmp_path)
    assert status == 0, out
