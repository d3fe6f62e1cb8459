"""The exceptions of the websockets package, with the same names and bases.

They are raised where websockets raises them: ``ConnectionClosedOK`` /
``ConnectionClosedError`` from ``recv`` / ``send`` once the connection is
closed, ``InvalidStatus`` (with the response) when a server refuses the
upgrade, ``InvalidURI`` for a bad URI, and so on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .frames import Close
    from .http11 import Response

__all__ = [
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidProxy",
    "InvalidHandshake",
    "SecurityError",
    "ProxyError",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidOrigin",
    "InvalidUpgrade",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
]


class WebSocketException(Exception):
    """Base class of every exception of this module."""


class ConnectionClosed(WebSocketException):
    """The connection is closed: raised by any operation on it.

    :ivar rcvd: the CLOSE frame received (:class:`~picows.websockets.frames.Close`),
        or None when none was.
    :ivar sent: the CLOSE frame sent, or None.
    :ivar rcvd_then_sent: True when the peer closed first, None when only one
        or no CLOSE moved.
    """

    def __init__(self, rcvd: Optional[Close], sent: Optional[Close],
                 rcvd_then_sent: Optional[bool] = None) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        super().__init__(rcvd, sent, rcvd_then_sent)

    def __str__(self) -> str:
        if self.rcvd is None:
            if self.sent is None:
                return "no close frame received or sent"
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"

    @property
    def code(self) -> int:
        """The received close code, 1006 when no CLOSE was received
        (deprecated in websockets: read ``rcvd.code``)."""
        return 1006 if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> str:
        """The received close reason (deprecated in websockets)."""
        return "" if self.rcvd is None else self.rcvd.reason


class ConnectionClosedOK(ConnectionClosed):
    """Both sides closed with 1000, 1001 or no code (1005)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a close handshake."""


class InvalidURI(WebSocketException):
    """A URI that is not a valid ws:// or wss:// URI."""

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(uri, msg)

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid URI: {self.msg}"


class InvalidProxy(WebSocketException):
    """A proxy URI that cannot be used."""

    def __init__(self, proxy: str, msg: str) -> None:
        self.proxy = proxy
        self.msg = msg
        super().__init__(proxy, msg)

    def __str__(self) -> str:
        return f"{self.proxy} isn't a valid proxy: {self.msg}"


class InvalidHandshake(WebSocketException):
    """The opening handshake failed."""


class SecurityError(InvalidHandshake):
    """A limit of the HTTP parser was exceeded."""


class ProxyError(InvalidHandshake):
    """Connecting through a proxy failed."""


class InvalidProxyMessage(ProxyError):
    """The proxy's answer to CONNECT is malformed."""


class InvalidProxyStatus(ProxyError):
    """The proxy refused CONNECT."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response)

    def __str__(self) -> str:
        return f"proxy rejected connection: HTTP {self.response.status_code:d}"


class InvalidMessage(InvalidHandshake):
    """The handshake request or response is malformed HTTP."""


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade with a status other than 101.

    :ivar response: the :class:`~picows.websockets.http11.Response`.
    """

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(response)

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.response.status_code:d}"


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or wrong."""

    def __init__(self, name: str, value: Optional[str] = None) -> None:
        self.name = name
        self.value = value
        super().__init__(name, value)

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        return f"invalid {self.name} header: {self.value}"


class InvalidHeaderFormat(InvalidHeader):
    """A header value that cannot be parsed."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header value that is not acceptable."""


class InvalidOrigin(InvalidHeader):
    """The Origin header is not one of the allowed origins."""

    def __init__(self, origin: Optional[str]) -> None:
        super().__init__("Origin", origin)


class InvalidUpgrade(InvalidHeader):
    """The Upgrade or Connection header is wrong."""


class NegotiationError(InvalidHandshake):
    """Negotiating an extension or a subprotocol failed."""


class DuplicateParameter(NegotiationError):
    """An extension parameter was given twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"duplicate parameter: {self.name}"


class InvalidParameterName(NegotiationError):
    """An unknown extension parameter."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"invalid parameter name: {self.name}"


class InvalidParameterValue(NegotiationError):
    """An extension parameter with a bad value."""

    def __init__(self, name: str, value: Optional[str]) -> None:
        self.name = name
        self.value = value
        super().__init__(name, value)

    def __str__(self) -> str:
        return f"invalid value for parameter {self.name}: {self.value}"


class ProtocolError(WebSocketException):
    """The peer broke the WebSocket protocol."""


class PayloadTooBig(WebSocketException):
    """A message is larger than ``max_size``."""

    def __init__(self, size_or_message: "int | None | str", max_size: Optional[int] = None,
                 current_size: Optional[int] = None) -> None:
        if isinstance(size_or_message, str):
            self.size: Optional[int] = None
            self.message: Optional[str] = size_or_message
        else:
            self.size = size_or_message
            self.message = None
        self.max_size = max_size
        self.current_size = current_size
        super().__init__(size_or_message)

    def __str__(self) -> str:
        if self.message is not None:
            return self.message
        return f"frame exceeds limit of {self.max_size} bytes"


class InvalidState(WebSocketException, AssertionError):
    """An operation that the connection's state forbids."""


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two coroutines ran an operation that must not run concurrently
    (two ``recv`` at once, ``send`` during a fragmented ``send``)."""


# -- the rest of websockets.exceptions' names ------------------------------------
# Raised by websockets' own HTTP parser, which picows does not use (its core
# answers malformed requests itself); defined so that code catching them, and
# websockets' own modules under the compatibility shim, import.

class InvalidMethod(InvalidHandshake):
    """An upgrade request with a method other than GET."""

    def __init__(self, method: str) -> None:
        self.method = method
        super().__init__(method)

    def __str__(self) -> str:
        return f"invalid HTTP method; expected GET; got {self.method}"


class InvalidProtocol(InvalidHandshake):
    """An upgrade request or response that is not HTTP/1.1."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        super().__init__(protocol)

    def __str__(self) -> str:
        return f"invalid HTTP protocol; expected HTTP/1.1; got {self.protocol}"


class RequestLineTooLong(SecurityError):
    """The request line is too long."""


class StatusLineTooLong(SecurityError):
    """The status line is too long."""


class HeaderLineTooLong(SecurityError):
    """A header line is too long."""


class TooManyHeaders(SecurityError):
    """Too many headers."""


class TooManyFragments(WebSocketException):
    """A message with more fragments than allowed."""

    def __init__(self, max_fragments: int) -> None:
        self.max_fragments = max_fragments
        super().__init__(max_fragments)


__all__ += ["InvalidMethod", "InvalidProtocol", "RequestLineTooLong", "StatusLineTooLong",
            "HeaderLineTooLong", "TooManyHeaders", "TooManyFragments"]
