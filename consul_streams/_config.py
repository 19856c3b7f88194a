"""Client configuration: explicit arguments, then ``CONSUL_*`` environment variables, then defaults.

The environment variables are the ones Consul's own CLI and Go client read:

==========================  ===========================================================
``CONSUL_HTTP_ADDR``        ``host:port``, ``http://...``, ``https://...``, ``unix://path``
``CONSUL_HTTP_TOKEN``       ACL token
``CONSUL_HTTP_TOKEN_FILE``  file holding the ACL token
``CONSUL_HTTP_SSL``         ``true``: use https for an address that names no scheme
``CONSUL_HTTP_SSL_VERIFY``  ``false``: do not verify the server certificate
``CONSUL_CACERT``           CA bundle file;  ``CONSUL_CAPATH``: CA directory
``CONSUL_CLIENT_CERT``      client certificate; ``CONSUL_CLIENT_KEY``: its key
``CONSUL_TLS_SERVER_NAME``  the name to verify the server certificate against (SNI too)
==========================  ===========================================================

An explicit argument always wins over the environment; an empty variable counts as unset.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from consul_streams._address import DEFAULT_ADDRESS, Address, parse_address
from consul_streams._parse import parse_bool, parse_int
from consul_streams.exceptions import InvalidArgument
from consul_streams.typing import Consistency, parse_consistency, parse_duration

__all__ = ["Settings", "make_ssl_context", "resolve_settings"]

PathArg = str | os.PathLike[str]
# Go's strconv.ParseBool, which Consul uses for the boolean variables.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class Settings:
    """Everything the transport needs, resolved and validated."""

    address: Address
    token: str | None
    datacenter: str | None
    consistency: Consistency
    timeout: float
    max_connections: int
    ssl_context: ssl.SSLContext | None
    tls_server_name: str | None

    def __repr__(self) -> str:
        # The dataclass repr would show the token.
        token = "set" if self.token else "none"
        return f"Settings(address={self.address.url!r}, token={token}, dc={self.datacenter!r})"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name) or None


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = _env(environ, name)
    if raw is None:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidArgument(name, f"expected true or false (Go ParseBool forms); got {raw!r}")


def _path(value: object, parameter: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return text
    raise InvalidArgument(parameter, f"expected a file path (str or os.PathLike); got {value!r}")


def _read_token_file(path: str, parameter: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError as exc:
        raise InvalidArgument(
            parameter, f"cannot read token file {path!r}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        # The message names the file, never its content.
        raise InvalidArgument(parameter, f"token file {path!r} is not UTF-8 text") from None


def _token(explicit: object, explicit_file: object, environ: Mapping[str, str]) -> str | None:
    if explicit is not None:
        if not isinstance(explicit, str):
            raise InvalidArgument("token", f"expected a str or None; got {type(explicit).__name__}")
        return explicit or None
    file = _path(explicit_file, "token_file")
    if file is not None:
        return _read_token_file(file, "token_file")
    env_token = _env(environ, "CONSUL_HTTP_TOKEN")
    if env_token is not None:
        return env_token
    env_file = _env(environ, "CONSUL_HTTP_TOKEN_FILE")
    return _read_token_file(env_file, "CONSUL_HTTP_TOKEN_FILE") if env_file else None


def _load_ca_path(context: ssl.SSLContext, ca_path: str) -> None:
    """Load every PEM file under ``ca_path``, as Consul does (go-rootcerts ``LoadCAPath``).

    OpenSSL's ``capath`` only finds certificates by subject-hash file names (``c_rehash``);
    Consul walks the directory and reads every file, each of which must hold PEM certificates.
    """
    found = False
    for root, dirs, files in os.walk(ca_path):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                with open(path, encoding="ascii", errors="replace") as handle:
                    pem = handle.read()
            except OSError as exc:
                raise InvalidArgument("ca_path", f"cannot read {path!r}: {exc}") from None
            if "-----BEGIN CERTIFICATE-----" not in pem:
                raise InvalidArgument("ca_path", f"no PEM certificate in {path!r}")
            try:
                context.load_verify_locations(cadata=pem)
            except ssl.SSLError as exc:
                raise InvalidArgument("ca_path", f"cannot load {path!r}: {exc}") from None
            found = True
    if not found:
        raise InvalidArgument("ca_path", f"no CA certificate files in {ca_path!r}")


def make_ssl_context(
    *,
    verify: bool,
    ca_file: str | None,
    ca_path: str | None,
    cert: str | None,
    key: str | None,
) -> ssl.SSLContext:
    """A client TLS context: system CAs unless ``ca_file``/``ca_path`` replace them."""
    if ca_path and not os.path.isdir(ca_path):
        # OpenSSL reads a CA directory lazily and would not complain until the handshake.
        raise InvalidArgument("ca_path", f"not a directory: {ca_path!r}")
    if ca_file or ca_path:
        # Like Consul's Go client: a configured CA replaces the system pool.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca_file:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise InvalidArgument("ca_file", f"cannot load CA certificates: {exc}") from None
        if ca_path:
            _load_ca_path(context, ca_path)
    else:
        context = ssl.create_default_context()
    if key and not cert:
        raise InvalidArgument("key", "a client key needs a client certificate (cert)")
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidArgument("cert", f"cannot load the client certificate: {exc}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def resolve_settings(
    *,
    address: object,
    token: object,
    token_file: object,
    datacenter: object,
    consistency: object,
    timeout: object,
    max_connections: object,
    verify: object,
    ca_file: object,
    ca_path: object,
    cert: object,
    key: object,
    tls_server_name: object,
    environ: Mapping[str, str],
) -> Settings:
    """Validate the explicit arguments and fill what is unset from ``environ``."""
    https = _env_bool(environ, "CONSUL_HTTP_SSL") or False
    if address is not None:
        parsed = parse_address(address, "address", https=https)
    else:
        env_address = _env(environ, "CONSUL_HTTP_ADDR")
        parameter = "CONSUL_HTTP_ADDR" if env_address else "address"
        parsed = parse_address(env_address or DEFAULT_ADDRESS, parameter, https=https)
    if datacenter is not None and (not isinstance(datacenter, str) or not datacenter):
        raise InvalidArgument("datacenter", f"expected a non-empty str or None; got {datacenter!r}")
    mode = "default" if consistency is None else parse_consistency(consistency)
    seconds = parse_duration(timeout, "timeout")
    if seconds <= 0:
        raise InvalidArgument("timeout", f"must be more than 0 seconds; got {timeout!r}")
    max_connections = parse_int(max_connections, "max_connections", minimum=1)
    if verify is not None:
        verify = parse_bool(verify, "verify")
    if verify is None:
        env_verify = _env_bool(environ, "CONSUL_HTTP_SSL_VERIFY")
        verify = True if env_verify is None else env_verify
    tls = {
        name: _path(value, name) or _env(environ, variable)
        for name, value, variable in (
            ("ca_file", ca_file, "CONSUL_CACERT"),
            ("ca_path", ca_path, "CONSUL_CAPATH"),
            ("cert", cert, "CONSUL_CLIENT_CERT"),
            ("key", key, "CONSUL_CLIENT_KEY"),
        )
    }
    if tls_server_name is not None and (
        not isinstance(tls_server_name, str) or not tls_server_name
    ):
        raise InvalidArgument(
            "tls_server_name", f"expected a non-empty str or None; got {tls_server_name!r}"
        )
    server_name = tls_server_name or _env(environ, "CONSUL_TLS_SERVER_NAME")
    context = make_ssl_context(verify=verify, **tls) if parsed.is_https else None
    return Settings(
        address=parsed,
        token=_token(token, token_file, environ),
        datacenter=datacenter,
        consistency=mode,
        timeout=seconds,
        max_connections=max_connections,
        ssl_context=context,
        tls_server_name=server_name if parsed.is_https else None,
    )
