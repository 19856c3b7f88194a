"""Running ``consul-streams`` in a thread (``main()``) or as a child process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from consul_streams.cli import main

ROOT = Path(__file__).resolve().parents[2]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in a thread (it runs its own event loop), as the script would."""
    status = await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 15)
    out, err = capsys.readouterr()
    return status, out, err


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def start_cli(
    *argv: str, stdin: int | None = None, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """The command as a child process (``python -m consul_streams.cli``), pipes on stdio."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consul_streams.cli",
        *argv,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env() if env is None else env,
    )


async def run_cli(
    *argv: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """The command as a child process to its end: ``(status, stdout, stderr)``."""
    proc = await start_cli(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        env=child_env(**(env or {})),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line, "the command ended early"
    return line.decode()


async def finish(proc: asyncio.subprocess.Process) -> int:
    """Wait for the child to end, draining its pipes (so none is left open)."""
    await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode is not None
    return proc.returncode
