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


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ``mypy --strict`` run over both snippets (a cold run costs tens of seconds)."""
    api = pytest.importorskip("mypy.api")
    folder = tmp_path_factory.mktemp("snippets")
    (folder / "quickstart.py").write_text(quickstart(), encoding="utf-8")
    (folder / "typed_pipes.py").write_text(TYPED_PIPES, encoding="utf-8")
    # The project's own cache (from running mypy on the repo) keeps this to seconds.
    cache = ROOT / ".mypy_cache"
    stdout, stderr, _ = api.run(
        ["--strict", "--python-version", "3.10", "--cache-dir", str(cache), str(folder)]
    )
    return str(stdout + stderr)


def errors_in(report: str, name: str) -> list[str]:
    return [line for line in report.splitlines() if f"{name}:" in line and "error" in line]


def test_the_readme_quickstart_passes_mypy_strict(mypy_report: str) -> None:
    assert errors_in(mypy_report, "quickstart.py") == [], mypy_report


def test_operators_keep_the_item_types_through_the_pipe(mypy_report: str) -> None:
    assert errors_in(mypy_report, "typed_pipes.py") == [], mypy_report


def test_a_pipe_that_lost_its_types_would_fail_here(tmp_path: Path) -> None:
    """The check can fail: assert_type on a wrong type is an error."""
    api = pytest.importorskip("mypy.api")
    bad = TYPED_PIPES.replace("Stream[tuple[list[KVEntry], Meta]]", "Stream[Any]")
    path = tmp_path / "wrong.py"
    path.write_text(bad, encoding="utf-8")
    cache = ROOT / ".mypy_cache"
    flags = ["--strict", "--python-version", "3.10", "--cache-dir", str(cache)]
    stdout, _, status = api.run([*flags, str(path)])
    assert status != 0
    assert "assert-type" in stdout or "Expression is of type" in stdout
