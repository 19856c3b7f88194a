"""pytest plugin of consul_streams (registered through the ``pytest11`` entry point).

Fixtures:

* ``consul_agent`` -- a fresh :class:`~consul_streams.testing.DevAgent` per test (jitter off).
* ``consul_client`` -- a :class:`consul_streams.Consul` connected to that agent.

Running the same tests against a real Consul: set ``CONSUL_HTTP_ADDR`` (and
``CONSUL_HTTP_TOKEN`` if ACLs are on) and pass ``--real-consul`` (every test) or mark tests
with ``@pytest.mark.real_consul`` (those tests). Then ``consul_agent`` is skipped, since a
real server cannot be restarted or given faults, and ``consul_client`` talks to the
environment's address.

The plugin is loaded in every pytest run of a project that installs consul_streams, so it
imports nothing the project may not have: the fixtures are async, and are run by
pytest-asyncio when it is installed (in its ``strict`` and ``auto`` modes alike) or by anyio's
pytest plugin for tests marked ``@pytest.mark.anyio``. A project without either still runs its
plain tests; only a test that asks for these fixtures needs one of them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from consul_streams._client import Consul

    from ._dev_agent import DevAgent


def _async_fixture(function: Callable[..., Any]) -> Any:
    """pytest-asyncio's fixture decorator when it is installed (its strict mode runs only
    those), else pytest's own (which anyio's plugin runs); never an import that can fail."""
    if importlib.util.find_spec("pytest_asyncio") is not None:
        import pytest_asyncio

        return pytest_asyncio.fixture(function)
    return pytest.fixture(function)


__all__ = ["consul_agent", "consul_client"]

_ENV = "CONSUL_HTTP_ADDR"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("consul_streams")
    group.addoption(
        "--real-consul",
        action="store_true",
        default=False,
        help=f"run consul_client tests against the real Consul at ${_ENV}",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"real_consul: run this test against the real Consul at ${_ENV} when set"
    )
    if config.getoption("real_consul", default=False) and not os.environ.get(_ENV):
        raise pytest.UsageError(f"--real-consul needs {_ENV} (e.g. 127.0.0.1:8500)")


def _real_consul(request: pytest.FixtureRequest) -> bool:
    """Whether this test targets a real Consul (option or marker, and the env is set)."""
    if not os.environ.get(_ENV):
        return False
    if request.config.getoption("real_consul", default=False):
        return True
    return request.node.get_closest_marker("real_consul") is not None


@_async_fixture
async def _consul_dev_agent(request: pytest.FixtureRequest) -> AsyncIterator[DevAgent | None]:
    """The dev agent of this test, or None when the test runs against a real Consul."""
    from ._dev_agent import DevAgent

    if _real_consul(request):
        yield None
        return
    async with DevAgent(jitter=False) as agent:
        yield agent


@pytest.fixture
def consul_agent(_consul_dev_agent: DevAgent | None) -> DevAgent:
    """A fresh, running dev agent (jitter off); skipped when targeting a real Consul."""
    if _consul_dev_agent is None:
        pytest.skip(f"consul_agent is not available against a real Consul (${_ENV})")
    return _consul_dev_agent


@_async_fixture
async def consul_client(_consul_dev_agent: DevAgent | None) -> AsyncIterator[Consul]:
    """A ``consul_streams.Consul`` for the dev agent (or the real Consul at $CONSUL_HTTP_ADDR)."""
    # Imported here: the client is a higher layer than the dev agent.
    from consul_streams._client import Consul

    if _consul_dev_agent is None:
        client = Consul.from_env()
    else:
        client = Consul(_consul_dev_agent.url, environ={})
    try:
        yield client
    finally:
        await client.aclose()
