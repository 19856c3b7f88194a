"""``ca_path`` / ``CONSUL_CAPATH``: every PEM file in the directory, as Consul reads it.

Consul's Go client loads the directory with go-rootcerts ``LoadCAPath``: ``filepath.Walk``
over it, every file read and parsed with ``AppendCertsFromPEM``, an error naming the file
that holds no PEM certificate. OpenSSL's ``capath`` instead only finds subject-hash names.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _stub_agent import StubAgent, mutual_tls_server_context, self_signed

from consul_streams import Consul
from consul_streams._config import make_ssl_context
from consul_streams.exceptions import InvalidArgument


def context_for(ca_path: Path) -> ssl.SSLContext:
    return make_ssl_context(verify=True, ca_file=None, ca_path=str(ca_path), cert=None, key=None)


@pytest.fixture
async def tls_agent(tmp_path: Path) -> AsyncIterator[tuple[StubAgent, Path, Path]]:
    cert, key = self_signed(tmp_path)
    stub = await StubAgent().start(ssl_context=mutual_tls_server_context(cert, key))
    yield stub, cert, key
    await stub.close()


async def test_a_plain_directory_of_pem_files_verifies_the_agent(
    tls_agent: tuple[StubAgent, Path, Path], tmp_path: Path
) -> None:
    """Not hashed, nested one level: OpenSSL's capath would find nothing here."""
    agent, cert, key = tls_agent
    nested = tmp_path / "cas" / "consul"
    nested.mkdir(parents=True)
    (nested / "consul-agent-ca.pem").write_bytes(cert.read_bytes())
    env = {"CONSUL_CAPATH": str(tmp_path / "cas"), "CONSUL_TLS_SERVER_NAME": "consul.test"}
    async with Consul(f"https://{agent.address}", cert=cert, key=key, environ=env) as client:
        peers, _ = await client.status.peers()
    assert peers == []
    assert len(agent.seen) == 1


def test_every_file_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = self_signed(tmp_path / "a", "one.test")
    second, _ = self_signed(tmp_path / "b", "two.test")
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "one.crt").write_bytes(first.read_bytes())
    (cas / "two.pem").write_bytes(second.read_bytes())
    assert context_for(cas).cert_store_stats()["x509_ca"] == 2


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"README": "not a certificate"}, "no PEM certificate in"),
        ({}, "no CA certificate files"),
        (
            {"broken.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "cannot load",
        ),
    ],
    ids=["not-pem", "empty", "corrupt"],
)
def test_a_file_that_is_not_a_certificate_is_named(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InvalidArgument, match=message) as info:
        context_for(tmp_path)
    assert info.value.parameter == "ca_path"
