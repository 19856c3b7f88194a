"""Every Python snippet in README.md and docs/ is checked: ``mypy --strict`` (one run over all of
them) and run against a fresh dev agent (``CONSUL_HTTP_ADDR`` points at it).

A comment line right before a block says how it runs:

* none: a script; it must end with status 0. A fragment with top-level ``await``/``async with``
  (the body of a coroutine, as in an asyncio REPL) runs as ``async def main()`` under
  ``asyncio.run``.
* ``<!-- snippet: follows -->``: a script that follows a stream forever; it must print and
  still be running, then it is stopped.
* ``<!-- snippet: pytest -->``: a test module, run by pytest with ``asyncio_mode = auto``.
* ``<!-- snippet: other library -->``: another library's code (the migration guide's left
  column); not ours to run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from consul_streams.testing import DevAgent

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"(?:<!-- snippet: (?P<mode>[a-z ]+) -->\n)?```python\n(?P<code>.*?)```", re.S)


@dataclass(frozen=True)
class Snippet:
    doc: str
    number: int
    mode: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.doc}#{self.number}"

    @property
    def program(self) -> str:
        """The snippet as a module: a top-level-await fragment wrapped in ``main()``."""
        try:
            compile(self.code, self.id, "exec")
        except SyntaxError as exc:
            if not re.search(r"'(await|async with|async for)' outside", str(exc)):
                raise
            body = "".join(f"    {line}\n" if line else "\n" for line in self.code.splitlines())
            return f"import asyncio\n\n\nasync def main() -> None:\n{body}\n\nasyncio.run(main())\n"
        return self.code

    @property
    def filename(self) -> str:
        stem = re.sub(r"\W", "_", self.doc.removesuffix(".md"))
        prefix = "test_" if self.mode == "pytest" else ""
        return f"{prefix}{stem}_{self.number}.py"


def snippets() -> list[Snippet]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for path in docs:
        text = path.read_text(encoding="utf-8")
        for number, match in enumerate(_BLOCK.finditer(text), 1):
            mode = match.group("mode") or "script"
            if mode != "other library":
                found.append(Snippet(str(path.relative_to(ROOT)), number, mode, match["code"]))
    return found


SNIPPETS = snippets()


def test_the_docs_have_snippets() -> None:
    assert any(s.doc == "README.md" for s in SNIPPETS)
    assert {s.mode for s in SNIPPETS} <= {"script", "follows", "pytest"}


def test_a_top_level_await_fragment_runs_as_a_coroutine() -> None:
    fragment = Snippet("x.md", 1, "script", "async with lock:\n    await work()\n")
    assert "async def main() -> None:\n    async with lock:\n        await work()\n" in (
        fragment.program
    )
    assert fragment.program.endswith("asyncio.run(main())\n")
    with pytest.raises(SyntaxError):
        _ = Snippet("x.md", 2, "script", "def broken(:\n").program


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ``mypy --strict`` run over every snippet (the repo's cache keeps it to seconds)."""
    api = pytest.importorskip("mypy.api")
    folder = tmp_path_factory.mktemp("snippets")
    for snippet in SNIPPETS:
        (folder / snippet.filename).write_text(snippet.program, encoding="utf-8")
    flags = ["--strict", "--python-version", "3.10", "--cache-dir", str(ROOT / ".mypy_cache")]
    stdout, stderr, _ = api.run([*flags, "--explicit-package-bases", str(folder)])
    return str(stdout + stderr)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.id)
def test_snippet_passes_mypy_strict(snippet: Snippet, mypy_report: str) -> None:
    errors = [line for line in mypy_report.splitlines() if line.startswith(snippet.filename)]
    assert errors == [], "\n".join(errors)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[DevAgent]:
    async with DevAgent(jitter=False) as dev:
        yield dev


def _env(agent: DevAgent) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "PYTEST_"))}
    env.update(CONSUL_HTTP_ADDR=agent.address, PYTHONPATH=str(ROOT))
    return env


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.id)
async def test_snippet_runs_against_the_dev_agent(
    snippet: Snippet, agent: DevAgent, tmp_path: Path
) -> None:
    path = tmp_path / snippet.filename
    path.write_text(snippet.program, encoding="utf-8")
    if snippet.mode == "pytest":
        argv = [
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-W",
            "error",
            str(path),
        ]
    else:
        argv = [str(path)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=tmp_path,
        env=_env(agent),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    if snippet.mode == "follows":
        # A follower prints, and keeps following: two lines (the read and the first change).
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        second = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first, "the snippet ended early"
        assert second, "the snippet ended early"
        assert proc.returncode is None
        proc.terminate()
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert b"Traceback" not in err, err.decode(errors="replace")
        return
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode(errors="replace")
