"""The pytest plugin in a project of someone else's: a fresh virtual environment with
consul-streams and plain pytest (no pytest-asyncio) runs a plain test; adding anyio, then
pytest-asyncio, makes the async fixtures work under either.

Slow (two package installs into a new venv, from pip's cache or the local index): run with
``pytest -m slow tests/testing/test_plugin_fresh_venv.py``; ``.ci/run`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "PYTEST_"))}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_plain_pytest_then_pytest_asyncio(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    project = tmp_path / "project"
    project.mkdir()
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    pip = (python, "-m", "pip", "install", "-q")
    installed = _run(*pip, ROOT, "pytest", cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert _run(python, "-c", "import pytest_asyncio", cwd=tmp_path).returncode != 0

    (project / "test_plain.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    plain = _run(python, "-m", "pytest", "-q", "-W", "error", "test_plain.py", cwd=project)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "1 passed" in plain.stdout
    plugins = _run(python, "-m", "pytest", "--trace-config", "--co", "-q", cwd=project)
    assert "consul_streams" in plugins.stdout  # the plugin was loaded, not skipped

    # anyio's pytest plugin runs the same fixtures for tests marked anyio.
    installed = _run(*pip, "anyio", cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    (project / "test_anyio.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def anyio_backend():\n"
        '    return "asyncio"\n\n'
        "@pytest.mark.anyio\n"
        "async def test_kv(consul_client):\n"
        '    assert await consul_client.kv.put("k", b"any")\n'
    )
    run = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_anyio.py", cwd=project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout

    installed = _run(*pip, "pytest-asyncio", cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    (project / "test_async.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.asyncio\n"
        "async def test_kv(consul_client):\n"
        '    assert await consul_client.kv.put("k", b"v")\n'
        '    entry, _ = await consul_client.kv.get("k")\n'
        '    assert entry["Value"] == b"v"\n'
    )
    run = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
