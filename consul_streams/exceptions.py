"""The consul_streams error tree.

::

    ConsulError
    ├── InvalidArgument (also ValueError)     bad input, raised at call time, nothing sent
    ├── ClientClosed                          the client was closed: its watches end with this
    ├── TransportError                        the request did not get an HTTP answer
    │   ├── ConnectError                      could not connect / connection reset
    │   └── ReadTimeout (also TimeoutError)   no answer within the read timeout
    ├── DecodeError                           an answer or KV value we could not decode (retried)
    ├── ConfigError                           a config value failed to decode or validate
    ├── LockLost                              a held lock or semaphore slot was lost
    ├── NoHealthyInstances                    a service has no instance to pick
    ├── SemaphoreConflict                     a semaphore prefix is used another way
    └── HTTPError                             an HTTP answer with an error status
        ├── BadRequest            400
        ├── PermissionDenied      403
        ├── NotFound              404 (where a 404 is an error, not a value)
        ├── MethodNotAllowed      405
        ├── Conflict              409 (txn errors attached)
        ├── RequestTooLarge       413
        ├── RateLimited           429
        └── ServerError           5xx

Every class says whether it is ``retriable``: the watch engine retries those with backoff and
raises the others. Messages and attributes never contain an ACL token: URLs are redacted before
they are stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "ClientClosed",
    "ConfigError",
    "Conflict",
    "ConnectError",
    "ConsulError",
    "DecodeError",
    "HTTPError",
    "InvalidArgument",
    "LockLost",
    "MethodNotAllowed",
    "NoHealthyInstances",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ReadTimeout",
    "RequestTooLarge",
    "SemaphoreConflict",
    "ServerError",
    "TransportError",
    "redact_url",
]

_TOKEN_PARAM = re.compile(r"(?i)([?&](?:token|x-consul-token)=)[^&#]*")


def redact_url(url: str) -> str:
    """Replace the value of any ``token`` query parameter in ``url`` with ``REDACTED``."""
    return _TOKEN_PARAM.sub(r"\1REDACTED", url)


class ConsulError(Exception):
    """Root of every error raised by consul_streams."""

    retriable: ClassVar[bool] = False


class InvalidArgument(ConsulError, ValueError):
    """An argument had a form that is not accepted; raised before anything is sent."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class ClientClosed(ConsulError):
    """The client was closed: its open watches end with this, and it sends no new request."""


class TransportError(ConsulError):
    """The request did not get an HTTP answer (connect failure, reset, timeout)."""

    retriable = True

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        self.method = method
        self.url = redact_url(url)
        where = f" ({method} {self.url})" if method else ""
        super().__init__(f"{message}{where}")


class ConnectError(TransportError):
    """Could not connect to the agent, or the connection broke mid-request."""


class ReadTimeout(TransportError, TimeoutError):
    """No answer arrived within the read timeout."""


class DecodeError(ConsulError):
    """An answer arrived but could not be decoded (its body, or a blocking read's index).

    Retriable: a 2xx that is not Consul's JSON is almost always a proxy's error page or a cut
    answer, and the next attempt usually gets the real one.
    """

    retriable = True

    def __init__(self, message: str, *, method: str = "", url: str = "", body: bytes = b"") -> None:
        self.method = method
        self.url = redact_url(url)
        self.body = body
        where = f" ({method} {self.url})" if method else ""
        super().__init__(f"{message}{where}")


class HTTPError(ConsulError):
    """Consul answered with an error status. Carries ``status``, ``body``, ``method``, ``url``."""

    status: int

    def __init__(self, status: int, body: str, *, method: str = "", url: str = "") -> None:
        self.status = status
        self.body = body
        self.method = method
        self.url = redact_url(url)
        detail = body.strip()
        super().__init__(f"Unexpected response code: {status} ({detail}) for {method} {self.url}")


class BadRequest(HTTPError):
    """400: Consul rejected the request's parameters or body."""


class PermissionDenied(HTTPError):
    """403: the ACL token lacks permission (or is not valid yet)."""


class NotFound(HTTPError):
    """404 where a missing object is an error (reads of missing KV keys are values instead)."""


class MethodNotAllowed(HTTPError):
    """405: the endpoint does not accept this method."""


class Conflict(HTTPError):
    """409: a transaction failed; ``errors`` holds Consul's per-operation errors."""

    def __init__(
        self,
        status: int,
        body: str,
        *,
        method: str = "",
        url: str = "",
        errors: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__(status, body, method=method, url=url)
        self.errors = list(errors)


class RequestTooLarge(HTTPError):
    """413: the body (a KV value, a transaction) is over Consul's limit."""


class RateLimited(HTTPError):
    """429: the agent asks us to slow down."""

    retriable = True


class ServerError(HTTPError):
    """5xx: the agent or server failed; usually transient."""

    retriable = True


# Raised by the recipes (config, discovery, locks); defined here so the tree is one.


class ConfigError(ConsulError):
    """A configuration value could not be decoded, assembled or validated.

    ``key`` names the KV key at fault when one is known (``None`` for validation errors of the
    whole document). The last good configuration stays in place when this is raised.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class LockLost(ConsulError):
    """A lock (or semaphore slot) was lost while held: the session was invalidated, or the
    key was released, deleted or taken by another session."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"lock on {key!r} lost: {reason}")
        self.key = key
        self.reason = reason


class NoHealthyInstances(ConsulError):
    """No instance of the service is healthy (passing, or warning with a non-zero weight)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"no healthy instance of service {service!r}")
        self.service = service


class SemaphoreConflict(ConsulError):
    """The prefix is used in a way that does not match this semaphore (another limit, or the
    ``.lock`` key is not a semaphore document)."""
