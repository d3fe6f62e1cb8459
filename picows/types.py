"""Exceptions and handshake objects: plain Python, used once per connection."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import (TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Tuple,
                    Union)

from multidict import CIMultiDict

if TYPE_CHECKING:
    from .picows import WSListener

__all__ = [
    "WSError",
    "WSHandshakeError",
    "WSInvalidMessageError",
    "WSInvalidStatusError",
    "WSInvalidHeaderError",
    "WSInvalidUpgradeError",
    "WSProtocolError",
    "WSInvalidURL",
    "WSProxyError",
    "WSUpgradeRequest",
    "WSUpgradeResponse",
    "WSUpgradeResponseWithListener",
    "WSCloseInfo",
    "WSCloseHandshake",
    "WSHeaders",
]

#: Header names of requests and responses: case-insensitive look-ups,
#: repeated headers kept (``getall``); picows stores the names lowercased.
WSHeaders = CIMultiDict
HeadersLike = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]


def make_headers(items: HeadersLike = None) -> "CIMultiDict[str]":
    """A CIMultiDict with lowercased names from a mapping or (name, value) pairs."""
    headers: CIMultiDict[str] = CIMultiDict()
    if items:
        pairs: Iterable[Tuple[str, Any]] = (
            items.items() if isinstance(items, Mapping) else items)
        for name, value in pairs:
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            headers.add(str(name).lower(), str(value))
    return headers


def get_logger(logger_name: Union[str, logging.Logger, "logging.LoggerAdapter[Any]", None],
               default: str) -> Union[logging.Logger, "logging.LoggerAdapter[Any]"]:
    """``picows.<name>`` for a str; a Logger or LoggerAdapter as it is."""
    if logger_name is None:
        logger_name = default
    if isinstance(logger_name, (logging.Logger, logging.LoggerAdapter)):
        return logger_name
    if isinstance(logger_name, str):
        return logging.getLogger(f"picows.{logger_name}")
    raise TypeError("logger_name must be a str, a logging.Logger or a "
                    f"logging.LoggerAdapter, not {type(logger_name).__name__}")


class WSError(RuntimeError):
    """Exception type for picows library."""


class WSHandshakeError(WSError):
    """The HTTP upgrade handshake failed.

    Two ways to build one: ``WSHandshakeError(description, raw_header=None,
    raw_body=None, response=None)`` (picows 2.3) and the older
    ``WSHandshakeError(status, reason, headers=None)``.

    :ivar status: the HTTP status: on the server side the one sent back, on
        the client side the one the server answered with (0 when the
        response could not be parsed at all, 101 when a 101 was wrong).
    :ivar reason: the description.
    :ivar headers: the response headers as (name, value) pairs (client side:
        the server's, e.g. ``location``, ``www-authenticate``,
        ``retry-after``; server side: the ones to send with the error).
    :ivar response: the server's :any:`WSUpgradeResponse` (client side), or
        None when there was none or it could not be parsed.
    :ivar raw_header: the response head as received, or None.
    :ivar raw_body: the response body as received (``Content-Length`` bytes,
        or until the server closed), or None.
    """

    def __init__(self, *args: Any, raw_header: Optional[bytes] = None,
                 raw_body: Optional[bytes] = None,
                 response: Optional["WSUpgradeResponse"] = None) -> None:
        status = 0
        headers: HeadersLike = None
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            status = args[0]
            description = str(args[1]) if len(args) > 1 else ""
            headers = args[2] if len(args) > 2 else None
        else:
            description = str(args[0]) if args else ""
            if len(args) > 1:
                raw_header = args[1]
            if len(args) > 2:
                raw_body = args[2]
            if len(args) > 3:
                response = args[3]
        if response is not None:
            status = int(response.status)
            if headers is None:
                headers = list(response.headers.items())
        super().__init__(f"{status} {description}" if status else description)
        self.status = status
        self.reason = description
        self.headers: List[Tuple[str, str]] = list(
            headers.items() if isinstance(headers, Mapping) else headers or ())
        self.response = response
        self.raw_header = raw_header
        self.raw_body = raw_body


class WSInvalidMessageError(WSHandshakeError):
    """The server's answer is not a well-formed HTTP response."""


class WSInvalidStatusError(WSHandshakeError):
    """The server answered with a status other than 101 (``response`` has it)."""


class WSInvalidHeaderError(WSHandshakeError):
    """A header of the server's 101 is missing or wrong.

    :ivar name: the header's name; :ivar value: its value, or None if missing.
    """

    def __init__(self, name: str, value: Optional[str], description: str = "", *,
                 status: int = 101, raw_header: Optional[bytes] = None,
                 raw_body: Optional[bytes] = None,
                 response: Optional["WSUpgradeResponse"] = None) -> None:
        text = description or (f"missing {name} header" if value is None
                               else f"invalid {name} header: {value!r}")
        if response is None:
            super().__init__(status, text, raw_header=raw_header, raw_body=raw_body)
        else:
            super().__init__(text, raw_header, raw_body, response)
        self.name = name
        self.value = value


class WSInvalidUpgradeError(WSInvalidHeaderError):
    """The 101 lacks ``Upgrade: websocket`` or ``Connection: Upgrade``."""


class WSProtocolError(WSError):
    """A frame broke the protocol or a limit.

    :ivar code: the close code (:any:`WSCloseCode` value) it calls for.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class WSInvalidURL(WSError, ValueError):
    """A URL that cannot be used (also a ValueError, as before)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"invalid websocket URL {url!r}: {message}")
        self.url = url


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
    """An HTTP request: the client's upgrade request, or any request the
    server's listener factory is given (a plain ``GET /health`` too).

    :ivar method: request method, e.g. ``b"GET"``
    :ivar path: request target, e.g. ``b"/ws?x=1"``
    :ivar version: HTTP version, e.g. ``b"HTTP/1.1"``
    :ivar headers: a case-insensitive multidict (:class:`multidict.CIMultiDict`)
        whose names are stored in lowercase: iterating yields lowercase names,
        ``headers["User-Agent"]`` and ``headers["user-agent"]`` both work, and
        repeated headers are kept (``headers.getall(name)``).
    """

    __slots__ = ("method", "path", "version", "headers")

    def __init__(self, method: bytes, path: bytes, version: bytes,
                 headers: HeadersLike) -> None:
        self.method = method
        self.path = path
        self.version = version
        self.headers: CIMultiDict[str] = (
            headers if isinstance(headers, CIMultiDict) else make_headers(headers))

    def __repr__(self) -> str:
        return (f"WSUpgradeRequest(method={self.method!r}, path={self.path!r}, "
                f"version={self.version!r}, headers={self.headers!r})")


def _status(status: Union[int, HTTPStatus]) -> HTTPStatus:
    try:
        return HTTPStatus(int(status))
    except ValueError:
        raise ValueError(f"unknown HTTP status {status!r}") from None


class WSUpgradeResponse:
    """An HTTP response: what the server sends (built with the
    ``create_*`` constructors) or what the client received.

    :ivar version: ``b"HTTP/1.1"``
    :ivar status: an :class:`http.HTTPStatus` (an int; a status unknown to
        :mod:`http` stays a plain int on the client side)
    :ivar reason: the reason phrase as bytes
    :ivar headers: a case-insensitive multidict, names stored in lowercase
    :ivar body: the body, or None
    """

    __slots__ = ("version", "status", "reason", "headers", "body")

    def __init__(self, version: bytes, status: Union[int, HTTPStatus],
                 reason: Optional[bytes] = None, headers: HeadersLike = None,
                 body: Optional[bytes] = None) -> None:
        self.version = version
        try:
            self.status: Union[int, HTTPStatus] = HTTPStatus(int(status))
        except ValueError:
            self.status = int(status)
        if reason is None:
            reason = (self.status.phrase.encode("latin-1")
                      if isinstance(self.status, HTTPStatus) else b"")
        self.reason = reason
        self.headers: CIMultiDict[str] = (
            headers if isinstance(headers, CIMultiDict) else make_headers(headers))
        self.body = body

    @staticmethod
    def create_101_response(extra_headers: HeadersLike = None) -> "WSUpgradeResponse":
        """The switch to WebSocket, with more headers for the 101, e.g.
        ``Sec-WebSocket-Protocol`` (the chosen subprotocol, one of those the
        client offered) or ``Set-Cookie``. picows adds ``Upgrade``,
        ``Connection``, ``Sec-WebSocket-Accept`` and the negotiated
        ``Sec-WebSocket-Extensions`` itself."""
        return WSUpgradeResponse(b"HTTP/1.1", HTTPStatus.SWITCHING_PROTOCOLS, None,
                                 extra_headers)

    @staticmethod
    def create_error_response(status: Union[int, HTTPStatus],
                              body: Optional[bytes] = None,
                              extra_headers: HeadersLike = None) -> "WSUpgradeResponse":
        """An error (``status`` >= 400, e.g. 401 with ``WWW-Authenticate``,
        429 or 503 with ``Retry-After``).

        :raises ValueError: for a status below 400.
        """
        code = _status(status)
        if code < 400:
            raise ValueError(f"an error response needs a status >= 400, not {int(code)}")
        return WSUpgradeResponse(b"HTTP/1.1", code, None, extra_headers, body)

    @staticmethod
    def create_redirect_response(status: Union[int, HTTPStatus], location: str,
                                 extra_headers: HeadersLike = None) -> "WSUpgradeResponse":
        """A redirect (3xx) to ``location``.

        :raises ValueError: for a status outside 300-399.
        """
        code = _status(status)
        if not 300 <= code < 400:
            raise ValueError(f"a redirect needs a 3xx status, not {int(code)}")
        headers = make_headers(extra_headers)
        headers["location"] = location
        return WSUpgradeResponse(b"HTTP/1.1", code, None, headers)

    @staticmethod
    def create_ok_response(body: Optional[bytes] = None,
                           extra_headers: HeadersLike = None) -> "WSUpgradeResponse":
        """``200 OK`` for a plain HTTP request (health checks, info pages);
        ``Content-Type`` defaults to ``text/plain; charset=utf-8``."""
        headers = make_headers(extra_headers)
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        return WSUpgradeResponse(b"HTTP/1.1", HTTPStatus.OK, None, headers, body)

    def __repr__(self) -> str:
        return (f"WSUpgradeResponse(version={self.version!r}, status={int(self.status)}, "
                f"reason={self.reason!r}, headers={self.headers!r}, "
                f"body={self.body!r})")


class WSUpgradeResponseWithListener:
    """What a server's listener factory may return to choose the response.

    :param response: the :any:`WSUpgradeResponse` to send.
    :param listener: the :any:`WSListener` for a 101; must be None for any
        other status.
    :raises ValueError: for a 101 without a listener or a listener with a
        response other than 101.
    """

    __slots__ = ("response", "listener")

    def __init__(self, response: WSUpgradeResponse,
                 listener: Optional["WSListener"]) -> None:
        if not isinstance(response, WSUpgradeResponse):
            raise TypeError("response must be a WSUpgradeResponse")
        if response.status == 101 and listener is None:
            raise ValueError("a 101 response needs a listener")
        if response.status != 101 and listener is not None:
            raise ValueError(f"a {int(response.status)} response cannot have a listener")
        self.response = response
        self.listener = listener

    def __repr__(self) -> str:
        return (f"WSUpgradeResponseWithListener(response={self.response!r}, "
                f"listener={self.listener!r})")


class WSCloseInfo:
    """One CLOSE frame: :ivar code: the close code (``WSCloseCode.NO_INFO``,
    0, for an empty CLOSE); :ivar reason: the reason as str ("" if none)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"WSCloseInfo(code={self.code!r}, reason={self.reason!r})"


class WSCloseHandshake:
    """How the close handshake went (:any:`WSTransport.close_handshake`).

    :ivar recv: the peer's CLOSE (:any:`WSCloseInfo`), or None.
    :ivar sent: our CLOSE, or None.
    :ivar recv_then_sent: True when the peer's CLOSE came first.
    """

    __slots__ = ("recv", "sent", "recv_then_sent")

    def __init__(self, recv: Optional[WSCloseInfo], sent: Optional[WSCloseInfo],
                 recv_then_sent: bool) -> None:
        self.recv = recv
        self.sent = sent
        self.recv_then_sent = recv_then_sent

    def __repr__(self) -> str:
        return (f"WSCloseHandshake(recv={self.recv!r}, sent={self.sent!r}, "
                f"recv_then_sent={self.recv_then_sent})")
