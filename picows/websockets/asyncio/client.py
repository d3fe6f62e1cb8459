"""connect() and ClientConnection, as websockets.asyncio.client, over ws_connect."""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import socket
import ssl as ssl_module
import sys
import urllib.parse
from typing import (Any, AsyncIterator, Callable, Generator, List, Literal, Optional,
                    Sequence, Tuple, Type, Union)

from ... import __version__
from ...compression import WSCompression
from ...api import ws_connect
from ...types import (WSError, WSHandshakeError, WSInvalidHeaderError, WSInvalidUpgradeError,
                      WSInvalidURL, WSProxyError)
from ..datastructures import Headers, HeadersLike
from ..exceptions import (InvalidHandshake, InvalidHeader, InvalidMessage, InvalidProxy,
                          InvalidProxyStatus, InvalidStatus, InvalidUpgrade, InvalidURI,
                          NegotiationError, ProxyError, SecurityError)
from ..http11 import Request, Response
from ._options import (ConnectionOptions, MaxSize, WriteLimit, checked_subprotocols,
                       client_compression)
from .connection import Connection, LoggerLike, _LONG_TIMEOUT, parse_max_size

__all__ = ["connect", "unix_connect", "ClientConnection", "process_exception"]

USER_AGENT = (f"Python/{sys.version_info[0]}.{sys.version_info[1]} "
              f"picows.websockets/{__version__}")

MAX_REDIRECTS = int(os.environ.get("WEBSOCKETS_MAX_REDIRECTS", "10"))

BACKOFF_INITIAL_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "5"))
BACKOFF_MIN_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_MIN_DELAY", "3.1"))
BACKOFF_MAX_DELAY = float(os.environ.get("WEBSOCKETS_BACKOFF_MAX_DELAY", "90.0"))
BACKOFF_FACTOR = float(os.environ.get("WEBSOCKETS_BACKOFF_FACTOR", "1.618"))


# The spelling of the header names the core adds to the request.
_CANONICAL = {"sec-websocket-key": "Sec-WebSocket-Key",
              "sec-websocket-version": "Sec-WebSocket-Version",
              "sec-websocket-extensions": "Sec-WebSocket-Extensions",
              "sec-websocket-protocol": "Sec-WebSocket-Protocol"}


class ClientConnection(Connection):
    """The client side of a connection (see :class:`Connection`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("is_client", True)
        super().__init__(**kwargs)


def backoff(initial_delay: float = BACKOFF_INITIAL_DELAY,
            min_delay: float = BACKOFF_MIN_DELAY,
            max_delay: float = BACKOFF_MAX_DELAY,
            factor: float = BACKOFF_FACTOR) -> Generator[float, None, None]:
    """Reconnection delays: a random one up to `initial_delay` (so that many
    clients do not come back at once), then `min_delay` growing by `factor`
    up to `max_delay`."""
    yield random.random() * initial_delay
    delay = min_delay
    while delay < max_delay:
        yield delay
        delay *= factor
    while True:
        yield max_delay


def process_exception(exc: Exception) -> Optional[Exception]:
    """What the reconnecting iterator does with a failed connection attempt:
    None retries (network errors, timeouts, a server closing during the
    handshake, 500/502/503/504), an exception is raised."""
    if isinstance(exc, (EOFError, OSError, asyncio.TimeoutError)):
        return None
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
        return None
    if isinstance(exc, InvalidStatus) and exc.response.status_code in (500, 502, 503, 504):
        return None
    return exc


def _parse_uri(uri: str) -> Tuple[str, Optional[Tuple[str, str]]]:
    """The URI without credentials, and the credentials."""
    try:
        parts = urllib.parse.urlsplit(uri)
        _ = parts.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if not parts.hostname:
        raise InvalidURI(uri, "hostname isn't provided")
    if parts.fragment:
        raise InvalidURI(uri, "fragment identifier is meaningless")
    credentials = None
    if parts.username is not None or parts.password is not None:
        if parts.password is None:
            raise InvalidURI(uri, "username provided without password")
        credentials = (urllib.parse.unquote(parts.username or ""),
                       urllib.parse.unquote(parts.password))
        netloc = parts.netloc.rpartition("@")[2]
        uri = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    # Non-ASCII paths are percent-encoded, as websockets does.
    uri = urllib.parse.quote(uri, safe="%/:=&?~#+!$,;'@()*[]")
    return uri, credentials


def _response_from(exc: WSHandshakeError) -> Response:
    response = exc.response
    if response is not None:
        return Response(int(response.status), response.reason.decode("latin-1"),
                        Headers(response.headers.items()),
                        exc.raw_body if exc.raw_body is not None else response.body or b"")
    reason = exc.reason.partition(": the server did not switch protocols")[0]
    return Response(exc.status, reason, Headers(exc.headers), exc.raw_body or b"")


class connect(ConnectionOptions):
    """Connect to the WebSocket server at `uri`.

    Awaiting it returns a :class:`ClientConnection`; ``async with`` closes
    that connection on exit; ``async for`` connects again (with a growing
    delay) after every connection failure that ``process_exception`` lets
    through. Parameters and defaults are those of websockets' ``connect``:

    :param uri: ``ws://`` or ``wss://`` URI; ``user:password@`` in it sends
        ``Authorization: Basic``.
    :param origin: the ``Origin`` header to send.
    :param subprotocols: subprotocols to offer, by preference.
    :param compression: ``"deflate"`` (permessage-deflate, by picows' core,
        with websockets' default settings: memLevel 5), None, or (picows
        only) a :class:`picows.WSCompression`.
    :param additional_headers: more headers for the upgrade request.
    :param user_agent_header: the ``User-Agent`` value; None sends none.
    :param proxy: a proxy URI (``http://``, ``https://``, ``socks5h://``...),
        True (from the environment), or None.
    :param open_timeout: seconds for connecting, TLS and the handshake.
    :param ping_interval: seconds between keepalive PINGs; None disables them.
    :param ping_timeout: seconds to wait for the PONG before closing with 1011.
    :param close_timeout: seconds to wait for the closing handshake.
    :param max_size: largest message (across its frames); 1009 above it.
        A tuple ``(message, frame)`` limits both.
    :param max_queue: high-water mark of frames buffered before reading
        pauses, or ``(high, low)``; None: unbounded.
    :param write_limit: high-water mark of the write buffer, or ``(high, low)``.
    :param logger: logger for this connection (default ``websockets.client``).
    :param create_connection: a :class:`ClientConnection` subclass.
    :param kwargs: ``ssl`` (an SSLContext or True), ``server_hostname``,
        ``sock``, ``host``/``port`` overrides and the rest of
        :meth:`asyncio.loop.create_connection`.
    """

    def __init__(self, uri: str, *,
                 origin: Optional[str] = None,
                 extensions: Optional[Sequence[Any]] = None,
                 subprotocols: Optional[Sequence[str]] = None,
                 compression: Union[str, WSCompression, None] = "deflate",
                 additional_headers: Optional[HeadersLike] = None,
                 user_agent_header: Optional[str] = USER_AGENT,
                 proxy: Union[str, Literal[True], None] = True,
                 process_exception: Callable[[Exception], Optional[Exception]] = process_exception,
                 open_timeout: Optional[float] = 10,
                 ping_interval: Optional[float] = 20,
                 ping_timeout: Optional[float] = 20,
                 close_timeout: Optional[float] = 10,
                 reconnect_delays: Callable[[], Generator[float, None, None]] = backoff,
                 max_size: MaxSize = 2 ** 20,
                 max_queue: MaxSize = 16,
                 write_limit: WriteLimit = 2 ** 15,
                 logger: Optional[LoggerLike] = None,
                 create_connection: Optional[Type[ClientConnection]] = None,
                 **kwargs: Any) -> None:
        self.uri = uri
        self.origin = origin
        self.subprotocols = checked_subprotocols(compression, extensions, subprotocols)
        self.compression = compression
        self.additional_headers = additional_headers
        self.user_agent_header = user_agent_header
        self.proxy = proxy
        self.process_exception = process_exception
        self.open_timeout = open_timeout
        self.reconnect_delays = reconnect_delays
        self._keep_connection_options(
            ping_interval, ping_timeout, close_timeout, max_size, max_queue, write_limit,
            logger or logging.getLogger("websockets.client"))
        self.create_connection = create_connection or ClientConnection
        self.kwargs = kwargs
        self.connection: Optional[ClientConnection] = None

    # -- the three ways to use it --------------------------------------------

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientConnection:
        if self.connection is not None:
            raise RuntimeError("connect() isn't reentrant")
        self.connection = await self._connect()
        return self.connection

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        delays: Optional[Generator[float, None, None]] = None
        while True:
            try:
                connection = await self._connect()
            except Exception as exc:
                new_exc = self.process_exception(exc)
                if new_exc is exc:
                    raise
                if new_exc is not None:
                    raise new_exc from exc
                if delays is None:
                    delays = self.reconnect_delays()
                delay = next(delays)
                self.logger.info("connect failed; reconnecting in %.1f seconds: %s",
                                 delay, exc)
                await asyncio.sleep(delay)
                continue
            delays = None
            try:
                yield connection
            finally:
                await connection.close()

    # -- connecting ------------------------------------------------------------

    def _request_headers(self, credentials: Optional[Tuple[str, str]],
                         additional_headers: Optional[HeadersLike]) -> List[Tuple[str, str]]:
        headers: List[Tuple[str, str]] = []
        if self.origin is not None:
            headers.append(("Origin", self.origin))
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        if self.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        if additional_headers is not None:
            headers.extend(Headers(additional_headers).raw_items())
        if self.user_agent_header is not None and not any(
                name.lower() == "user-agent" for name, _ in headers):
            headers.append(("User-Agent", self.user_agent_header))
        return headers

    def process_redirect(self, exc: Exception) -> Union[Exception, str]:
        """The URI to follow when `exc` is a redirect (301, 302, 303, 307,
        308 with a Location), else `exc`."""
        if not (isinstance(exc, InvalidStatus)
                and exc.response.status_code in (301, 302, 303, 307, 308)
                and "Location" in exc.response.headers):
            return exc
        return urllib.parse.urljoin(self.uri, exc.response.headers["Location"])

    async def _connect(self) -> ClientConnection:
        if self.open_timeout is None:
            return await self._follow_redirects()
        try:
            return await asyncio.wait_for(self._follow_redirects(), self.open_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("timed out during opening handshake") from None

    async def _follow_redirects(self) -> ClientConnection:
        uri = self.uri
        headers = self.additional_headers
        for _ in range(MAX_REDIRECTS + 1):
            try:
                return await self._open(uri, headers)
            except InvalidStatus as exc:
                self.uri, old_uri = uri, self.uri
                try:
                    new = self.process_redirect(exc)
                finally:
                    self.uri = old_uri
                if isinstance(new, Exception):
                    if new is exc:
                        raise
                    raise new from exc
                old, target = urllib.parse.urlsplit(uri), urllib.parse.urlsplit(new)
                if old.scheme == "wss" and target.scheme == "ws":
                    raise SecurityError(
                        f"cannot follow redirect to non-secure URI {new}") from exc
                same_origin = (old.scheme, old.hostname, old.port) == (
                    target.scheme, target.hostname, target.port)
                unix = isinstance(self.kwargs.get("sock"), _UnixSocket)
                if unix and not same_origin:
                    raise ValueError(f"cannot follow cross-origin redirect to {new} "
                                     "with a Unix socket") from None
                if "sock" in self.kwargs and not unix:
                    raise ValueError(f"cannot follow redirect to {new} "
                                     "with a preexisting socket") from None
                if not same_origin:
                    if "host" in self.kwargs or "port" in self.kwargs:
                        raise ValueError(f"cannot follow cross-origin redirect to {new} "
                                         "with an explicit host or port") from None
                    # Credentials are for the origin they were given for.
                    headers = [(name, value) for name, value in Headers(
                        headers or ()).raw_items() if name.lower() not in (
                        "authorization", "cookie", "proxy-authorization")]
                uri = new
                self.logger.info("redirect to %s", uri)
        raise SecurityError(f"more than {MAX_REDIRECTS} redirects")

    async def _open(self, uri: str, additional_headers: Optional[HeadersLike]) -> ClientConnection:
        uri, credentials = _parse_uri(uri)
        secure = uri.startswith("wss:")
        kwargs = dict(self.kwargs)
        if secure and "ssl" in kwargs and kwargs["ssl"] is None:
            raise ValueError("ssl=None is incompatible with a wss:// URI")
        ssl = kwargs.pop("ssl", None)
        if not secure and ssl is not None:
            raise ValueError("ssl argument is incompatible with a ws:// URI")
        if secure and not isinstance(ssl, ssl_module.SSLContext):
            ssl = None  # True or None: the default context
        if isinstance(kwargs.get("sock"), _UnixSocket):
            path = kwargs["sock"].path
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
            kwargs["sock"] = sock
        if "proxy_ssl" in kwargs:
            proxy_ssl = kwargs.pop("proxy_ssl")
            scheme = self.proxy.partition("://")[0] if isinstance(self.proxy, str) else ""
            if scheme == "http" and proxy_ssl is not None:
                raise ValueError("proxy_ssl argument is incompatible with an http:// proxy")
            if scheme == "https" and proxy_ssl is None:
                raise ValueError("proxy_ssl=None is incompatible with an https:// proxy")
            if isinstance(proxy_ssl, ssl_module.SSLContext):
                kwargs["proxy_ssl_context"] = proxy_ssl
        kwargs.pop("proxy_server_hostname", None)
        if "sock" in kwargs or "host" in kwargs or "port" in kwargs:
            proxy = None
        else:
            proxy = self.proxy
        if isinstance(proxy, str):
            scheme = proxy.partition("://")[0]
            if scheme not in ("http", "https", "socks4", "socks4a", "socks5", "socks5h"):
                raise InvalidProxy(proxy, f"scheme {scheme} isn't supported")
        # host / port overrides: connect there, keep the URI's Host header.
        host = kwargs.pop("host", None)
        port = kwargs.pop("port", None)
        if host is not None or port is not None:
            parts = urllib.parse.urlsplit(uri)
            kwargs["host"] = host if host is not None else parts.hostname
            kwargs["port"] = port if port is not None else (parts.port or (443 if secure else 80))
        headers = self._request_headers(credentials, additional_headers)
        _, frame_limit = parse_max_size(self.max_size)

        def factory() -> ClientConnection:
            return self.create_connection(is_client=True, **self._connection_options())

        try:
            transport, listener = await ws_connect(
                factory, uri, ssl_context=ssl, logger_name="websockets.client",
                websocket_handshake_timeout=None,
                max_frame_size=frame_limit,
                close_timeout=self.close_timeout or _LONG_TIMEOUT,
                extra_headers=headers,
                enable_compression=client_compression(self.compression),
                # Redirects are followed here, as websockets does (process_redirect).
                max_redirects=0,
                proxy=True if proxy is True else proxy,
                **kwargs)
        except WSProxyError as exc:
            if exc.status is not None and exc.hop == "proxy" and exc.status >= 300:
                raise InvalidProxyStatus(Response(exc.status, exc.reason or "",
                                                  Headers(), b"")) from exc
            raise ProxyError(str(exc)) from exc
        except WSInvalidHeaderError as exc:
            error = (InvalidUpgrade if isinstance(exc, WSInvalidUpgradeError)
                     else InvalidHeader)
            raise error(exc.name, exc.value) from exc
        except WSHandshakeError as exc:
            if exc.status == 0:
                raise InvalidMessage("did not receive a valid HTTP response") from exc
            if exc.status == 101:
                raise InvalidHandshake(exc.reason) from exc
            raise InvalidStatus(_response_from(exc)) from exc
        except WSInvalidURL as exc:
            raise InvalidURI(uri, str(exc)) from exc
        except WSError as exc:
            if "connection lost" in str(exc):
                raise InvalidMessage("did not receive a valid HTTP response") from EOFError(
                    "connection closed while reading HTTP status line")
            raise InvalidHandshake(str(exc)) from exc
        connection: ClientConnection = listener  # type: ignore[assignment]
        connection._uri = uri  # type: ignore[attr-defined]
        core_response = transport.response
        parts = urllib.parse.urlsplit(uri)
        request_headers = Headers()
        request_headers["Host"] = parts.netloc
        for name, value in headers:
            request_headers[name] = value
        if transport.request is not None:
            # What the core added (key, version, extensions...), as sent.
            for name, value in transport.request.headers.items():
                if name not in request_headers:
                    request_headers[_CANONICAL.get(name, name.title())] = value
        connection.request = Request(parts.path + (f"?{parts.query}" if parts.query else "")
                                     or "/", request_headers)
        if core_response is not None:
            connection.response = Response(
                int(core_response.status), core_response.reason.decode("latin-1"),
                Headers(core_response.headers.items()), b"")
            subprotocol = core_response.headers.get("sec-websocket-protocol")
            if subprotocol is not None:
                if not self.subprotocols:
                    transport.disconnect()
                    raise NegotiationError("no subprotocols supported")
                if subprotocol not in self.subprotocols:
                    transport.disconnect()
                    raise NegotiationError(f"unsupported subprotocol: {subprotocol}")
                connection.subprotocol = subprotocol
        return connection


def unix_connect(path: Optional[str] = None, uri: Optional[str] = None,
                 **kwargs: Any) -> connect:
    """:class:`connect` over a Unix socket at `path` (or ``sock=``, a
    connected one). `uri` (default ``ws://localhost/``, ``wss://`` with
    ``ssl``) gives the Host header and the path."""
    if uri is None:
        uri = "wss://localhost/" if kwargs.get("ssl") is not None else "ws://localhost/"
    if path is None and "sock" not in kwargs:
        raise ValueError("no path and sock were specified")
    if path is not None and "sock" in kwargs:
        raise ValueError("path and sock can not be specified at the same time")
    if path is not None:
        kwargs["sock"] = _UnixSocket(path)
    return connect(uri, **kwargs)


class _UnixSocket:
    """A Unix socket path, connected when connect() opens (see _open)."""

    def __init__(self, path: str) -> None:
        self.path = path
