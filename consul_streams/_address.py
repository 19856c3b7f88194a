"""Agent addresses: the forms ``CONSUL_HTTP_ADDR`` and ``Consul(address=...)`` accept."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from yarl import URL

from consul_streams.exceptions import InvalidArgument

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "Address", "parse_address"]

DEFAULT_PORT = 8500
DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"
_FORMS = (
    "'host:port', 'host' (port 8500), '[::1]:8500', 'http://host[:port]', "
    "'https://host[:port]' or 'unix:///path/to/socket'"
)


@dataclass(frozen=True)
class Address:
    """Where the agent listens: a TCP host and port (``http``/``https``) or a unix socket."""

    scheme: str  # "http", "https" or "unix"
    host: str = ""
    port: int = 0
    unix_path: str | None = None

    @property
    def url(self) -> str:
        """A display form: ``http://127.0.0.1:8500`` or ``unix:///run/consul.sock``."""
        if self.unix_path is not None:
            return f"unix://{self.unix_path}"
        return self.base_url

    @property
    def base_url(self) -> str:
        """What request paths are appended to (a unix socket is reached as ``localhost``)."""
        if self.unix_path is not None:
            return "http://localhost"
        return str(URL.build(scheme=self.scheme, host=self.host, port=self.port))

    @property
    def is_https(self) -> bool:
        return self.scheme == "https"


def parse_address(value: object, parameter: str = "address", *, https: bool = False) -> Address:
    """Parse an agent address; ``https`` picks the scheme when the text names none.

    A bare host gets Consul's port 8500; a URL without a port gets its scheme's port, as in
    Consul's Go client.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(parameter, f"expected {_FORMS}; got {value!r}")
    text = value.strip()
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path:
            raise InvalidArgument(
                parameter, f"a unix address needs a socket path; got {_shown(text)}"
            )
        return Address("unix", unix_path=path)
    if "://" in text:
        return _parse_url(text, parameter)
    scheme = "https" if https else "http"
    if text.count(":") > 1 and not text.startswith("["):
        try:
            ipaddress.IPv6Address(text)  # a bare IPv6 address ('::::' is not one)
        except ValueError:
            raise InvalidArgument(parameter, f"expected {_FORMS}; got {_shown(text)}") from None
        return Address(scheme, text, DEFAULT_PORT)
    try:
        url = URL(f"{scheme}://{text}")
        port = url.explicit_port
    except ValueError:
        raise InvalidArgument(parameter, f"expected {_FORMS}; got {_shown(text)}") from None
    if not url.host or url.raw_path not in ("", "/") or url.query_string or url.user:
        raise InvalidArgument(parameter, f"expected {_FORMS}; got {_shown(text)}")
    return Address(scheme, url.host, port if port is not None else DEFAULT_PORT)


def _shown(text: str) -> str:
    # Userinfo may hold a password: never echo it back.
    return "<an address with userinfo>" if "@" in text else repr(text)


def _parse_url(text: str, parameter: str) -> Address:
    try:
        url = URL(text)
        port = url.port
    except ValueError:
        raise InvalidArgument(parameter, f"expected {_FORMS}; got {_shown(text)}") from None
    if url.scheme not in ("http", "https"):
        raise InvalidArgument(
            parameter, f"the scheme must be http, https or unix; got {url.scheme!r}"
        )
    if not url.host or url.raw_path not in ("", "/") or url.query_string or url.user:
        raise InvalidArgument(parameter, f"expected {_FORMS}; got {_shown(text)}")
    return Address(url.scheme, url.host, port or (443 if url.scheme == "https" else 80))
