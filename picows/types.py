"""Exceptions and handshake objects: plain Python, used once per connection."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

__all__ = [
    "WSError",
    "WSHandshakeError",
    "WSProxyError",
    "WSUpgradeRequest",
    "WSUpgradeResponse",
]


class WSError(RuntimeError):
    """Exception type for picows library."""


class WSHandshakeError(WSError):
    """The HTTP upgrade handshake failed.

    On the server side it carries the HTTP status sent back to the client; on
    the client side the status the server answered with (0 when the response
    could not be parsed at all).
    """

    def __init__(self, status: int, reason: str,
                 headers: Optional[List[Tuple[str, str]]] = None) -> None:
        super().__init__(f"{status} {reason}" if status else reason)
        self.status = status
        self.reason = reason
        self.headers: List[Tuple[str, str]] = list(headers or ())


class WSProxyError(WSError):
    """Connecting through a proxy failed.

    :ivar hop: ``"proxy"`` when reaching or talking to the proxy failed
        (connection refused, TLS, authentication, a refusal by policy such as
        403, a proxy that closed or did not answer in time); ``"target"`` when
        the proxy answered that it could not reach the target (HTTP 500, 502, 503,
        504; a SOCKS "host unreachable", "connection refused", ...).
    :ivar proxy: the proxy as ``scheme://host:port``, never with credentials.
    :ivar status: the HTTP status of the CONNECT response, or the SOCKS
        reply code; None when there was no answer.
    :ivar reason: the HTTP reason phrase or the SOCKS error text, or None.
    """

    def __init__(self, message: str, *, hop: str, proxy: str,
                 status: Optional[int] = None, reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.hop = hop
        self.proxy = proxy
        self.status = status
        self.reason = reason


class WSUpgradeRequest:
    """The HTTP upgrade request a client sent to the server.

    :ivar method: request method, e.g. ``b"GET"``
    :ivar path: request target, e.g. ``b"/ws?x=1"``
    :ivar version: HTTP version, e.g. ``b"HTTP/1.1"``
    :ivar headers: header names in lowercase; repeated headers are joined
        with ``", "``
    """

    __slots__ = ("method", "path", "version", "headers")

    def __init__(self, method: bytes, path: bytes, version: bytes,
                 headers: Dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers

    def __repr__(self) -> str:
        return (f"WSUpgradeRequest(method={self.method!r}, path={self.path!r}, "
                f"version={self.version!r}, headers={self.headers!r})")


class WSUpgradeResponse:
    """The HTTP response a server sent to the client's upgrade request."""

    __slots__ = ("version", "status", "reason", "headers")

    def __init__(self, version: bytes, status: int, reason: bytes,
                 headers: Dict[str, str]) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers

    def __repr__(self) -> str:
        return (f"WSUpgradeResponse(version={self.version!r}, status={self.status}, "
                f"reason={self.reason!r}, headers={self.headers!r})")
