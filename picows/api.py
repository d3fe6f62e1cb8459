"""ws_connect and ws_create_server: argument checks, URLs and the loop calls.

Plain Python: this runs once per connection. The protocol itself is
``picows.picows.WSProtocol``.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import time
import urllib.parse
import weakref
from typing import (Any, Awaitable, Callable, Dict, FrozenSet, Iterable, List, Mapping,
                    NamedTuple, Optional, Sequence, Set, Tuple, Union)

from .compression import WSCompression
from .handshake import build_upgrade_request, new_client_key
from .picows import (TLSLayer, WSAutoPingStrategy, WSCloseCode, WSListener, WSProtocol,
                     WSTransport, _ConnectionOptions)
from .proxy import SocketFactory, open_socket
from .types import (WSInvalidStatusError, WSInvalidURL, WSUpgradeRequest,
                    WSUpgradeResponse, WSUpgradeResponseWithListener)

__all__ = ["ws_connect", "ws_create_server", "ws_server_connections", "ws_close_server"]

# The open connections of each server ws_create_server made.
_SERVER_CONNECTIONS: "weakref.WeakKeyDictionary[asyncio.AbstractServer, Set[WSTransport]]" = \
    weakref.WeakKeyDictionary()

DEFAULT_MAX_FRAME_SIZE = 10 * 1024 * 1024

ExtraHeaders = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
LoggerName = Union[str, logging.Logger, "logging.LoggerAdapter[Any]"]
ClientListenerFactory = Union[Callable[[], WSListener],
                              Callable[[WSUpgradeRequest, WSUpgradeResponse], WSListener]]
ServerListenerResult = Union[WSListener, WSUpgradeResponseWithListener, None]
#: A server's factory: the answer, or an awaitable of it (a coroutine
#: function's coroutine), awaited with the upgrade paused.
ServerListenerFactory = Callable[
    [WSUpgradeRequest], Union[ServerListenerResult, Awaitable[ServerListenerResult]]]

#: The statuses a client follows (RFC 9110 15.4); 300 and 305 are not.
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))


# The keywords of ws_connect / ws_create_server that are connection options:
# _ConnectionOptions declares and checks them; each call builds one object.
_OPTION_NAMES = (
    "logger_name", "disconnect_on_exception", "websocket_handshake_timeout",
    "max_frame_size", "enable_auto_pong", "enable_auto_close", "enable_utf8_validation",
    "close_timeout", "enable_auto_ping", "auto_ping_idle_timeout", "auto_ping_reply_timeout",
    "auto_ping_strategy", "allowed_origins", "enable_compression", "read_buffer_init_size",
    "max_write_buffer_size")


def _options(ws_listener_factory: Callable[..., Any],
             arguments: Mapping[str, Any]) -> _ConnectionOptions:
    """The connection options among a call's `arguments` (its ``locals()``
    on entry), checked once."""
    return _ConnectionOptions(ws_listener_factory, **{
        name: arguments[name] for name in _OPTION_NAMES if name in arguments})


def _own_tls(loop: asyncio.AbstractEventLoop, ssl_context: Any) -> bool:
    """Whether picows does TLS itself (TLSLayer) instead of the loop.

    On the default asyncio loop (whose TLS is pure Python) and on uvloop
    (fewer instructions per record than its own TLS: see
    benchmarks/results/2026-12-01-tls-instructions.md). Both close a socket
    only after connection_lost, which the layer's direct sends rely on.
    PICOWS_LOOP_TLS=1 makes the loop do it everywhere.
    """
    return (isinstance(ssl_context, ssl.SSLContext)
            and (isinstance(loop, asyncio.SelectorEventLoop)
                 or type(loop).__module__ in ("uvloop", "uvloop.loop"))
            and not os.environ.get("PICOWS_LOOP_TLS"))


def _bound_tls_handshake(kwargs: Dict[str, Any], timeout: Optional[float],
                         user_chose: bool) -> bool:
    """Unless the caller chose ``ssl_handshake_timeout`` (`user_chose`), the
    TLS handshake gets `timeout` (what is left of websocket_handshake_timeout,
    not the loops' 60 s), and that one budget covers TLS and the upgrade
    together. Return whether it does (the protocol then counts from the TCP
    connection, not from the end of TLS)."""
    if kwargs.get("ssl") in (None, False) or user_chose or timeout is None:
        return False
    kwargs["ssl_handshake_timeout"] = min(kwargs.get("ssl_handshake_timeout") or timeout,
                                          timeout)
    return True


def _pop_tls_options(kwargs: Dict[str, Any]) -> Optional[float]:
    """Take the loop's TLS arguments out of `kwargs`; return the handshake
    timeout (None: asyncio's default, 60 s)."""
    kwargs.pop("ssl", None)
    kwargs.pop("ssl_shutdown_timeout", None)
    timeout: Optional[float] = kwargs.pop("ssl_handshake_timeout", None)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"ssl_handshake_timeout should be a positive number, got {timeout}")
    return timeout


class _Target(NamedTuple):
    secure: bool
    host: str
    port: int
    host_header: str
    target: str
    authorization: Optional[str]   # from user:password@ in the URL


def _parse_url(url: str) -> _Target:
    """Split a ws:// or wss:// URL; credentials become an Authorization value.

    :raises WSInvalidURL: (a ValueError) for a URL that cannot be used.
    """
    if not isinstance(url, str):
        raise WSInvalidURL(repr(url), f"url must be a str, not {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WSInvalidURL(_redact(url), str(exc)) from None
    if parts.scheme not in ("ws", "wss"):
        raise WSInvalidURL(_redact(url), "the scheme must be ws or wss")
    if not parts.hostname:
        raise WSInvalidURL(_redact(url), "no host")
    authorization = None
    if parts.username is not None or parts.password is not None:
        # As websockets and aiohttp do: Basic credentials (RFC 7617).
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        if ":" in user:
            raise WSInvalidURL(_redact(url), "a user name cannot contain ':'")
        token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
        authorization = f"Basic {token}"
    secure = parts.scheme == "wss"
    default_port = 443 if secure else 80
    if port is None:
        port = default_port
    host = parts.hostname
    host_header = f"[{host}]" if ":" in host else host
    if port != default_port:
        host_header = f"{host_header}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if any(c in target for c in " \r\n\t\0"):
        raise WSInvalidURL(_redact(url), "whitespace in the path")
    return _Target(secure, host, port, host_header, target, authorization)


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{netloc}"))
    except ValueError:
        return "<unparsable URL>"


def _redirect_url(url: str, location: str) -> str:
    """Where a Location sends us: resolved against `url`; http(s) becomes
    ws(s), as browsers and websockets do."""
    new = urllib.parse.urljoin(url, location.strip())
    scheme, sep, rest = new.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    return f"{scheme}{sep}{rest}"


def _same_origin(a: _Target, b: _Target) -> bool:
    return (a.secure, a.host.lower(), a.port) == (b.secure, b.host.lower(), b.port)


def _headers_list(extra_headers: ExtraHeaders) -> List[Tuple[str, str]]:
    return [(str(k), str(v)) for k, v in (
        extra_headers.items() if isinstance(extra_headers, Mapping)
        else extra_headers or ())]


async def ws_connect(ws_listener_factory: ClientListenerFactory, url: str, *,
                     ssl_context: Union[bool, ssl.SSLContext, None] = None,
                     disconnect_on_exception: bool = True,
                     logger_name: LoggerName = "client",
                     websocket_handshake_timeout: Optional[float] = 5,
                     max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                     enable_auto_pong: bool = True,
                     enable_auto_close: bool = True,
                     enable_utf8_validation: bool = True,
                     close_timeout: float = 5.0,
                     enable_auto_ping: bool = False,
                     auto_ping_idle_timeout: float = 20.0,
                     auto_ping_reply_timeout: float = 20.0,
                     auto_ping_strategy: WSAutoPingStrategy = WSAutoPingStrategy.PING_WHEN_IDLE,
                     extra_headers: ExtraHeaders = None,
                     enable_compression: Union[bool, WSCompression] = False,
                     proxy: Union[str, bool, None] = None,
                     proxy_ssl_context: Optional[ssl.SSLContext] = None,
                     socket_factory: Optional[SocketFactory] = None,
                     max_redirects: int = 5,
                     read_buffer_init_size: int = 16 * 1024,
                     max_write_buffer_size: Optional[int] = None,
                     **kwargs: Any) -> Tuple[WSTransport, WSListener]:
    """Open a websocket connection to `url`.

    Extra keyword arguments go to :any:`asyncio.loop.create_connection`.

    With ``wss://`` on the default asyncio loop and on uvloop, picows does
    TLS itself (in Cython, over an ``ssl.SSLObject`` and ``ssl.MemoryBIO``;
    cheaper per record than either loop's TLS);
    ``server_hostname`` and ``ssl_handshake_timeout`` (default 60 s) work as
    with asyncio, ``ssl_shutdown_timeout`` is ignored, and
    ``underlying_transport.get_extra_info("ssl_object")`` and the other TLS
    keys answer as asyncio's. Set the environment variable
    ``PICOWS_LOOP_TLS=1`` to leave TLS to the loop.

    :param ws_listener_factory: a factory returning the :any:`WSListener`
        that handles the connection, called without arguments or, if it
        takes two, with the :any:`WSUpgradeRequest` sent and the
        :any:`WSUpgradeResponse` (the 101) received.
    :param url: ``ws://host[:port]/path?query`` or ``wss://...``. Credentials
        (``ws://user:password@host/``, percent-encoded) are sent as
        ``Authorization: Basic`` (unless `extra_headers` has an
        Authorization) and never logged.
    :param ssl_context: an SSLContext to use for ``wss://`` instead of the
        default one (``ssl.create_default_context()``); ignored for
        ``ws://``, so one context can serve every URL.
    :param disconnect_on_exception: disconnect (CLOSE 1011) when
        ``on_ws_frame`` raises; the exception is then raised again by
        :any:`WSTransport.wait_disconnected`.
    :param logger_name: picows logs on ``picows.<logger_name>``; a
        :class:`logging.Logger` or :class:`logging.LoggerAdapter` is used as
        it is. At DEBUG the log tells each connection's story (request and
        response lines, negotiated extensions and subprotocol, CLOSE frames,
        why it disconnected); nothing is logged per data frame.
    :param websocket_handshake_timeout: seconds for the whole opening: the
        TLS handshake with ``wss://`` (unless ``ssl_handshake_timeout`` is
        given, which then bounds TLS alone, and this the upgrade after it)
        and the server's upgrade response; :class:`asyncio.TimeoutError`
        (or :class:`ConnectionAbortedError` during TLS) after that.
    :param max_frame_size: a frame declaring a larger payload gets CLOSE 1009.
    :param enable_auto_pong: answer PINGs the listener did not answer itself.
    :param enable_auto_close: answer the peer's CLOSE and close the connection.
    :param enable_utf8_validation: fail TEXT messages that are not UTF-8 (1007).
    :param close_timeout: seconds to wait for the server to finish the close
        handshake and close TCP before disconnecting anyway.
    :param enable_auto_ping: send a PING after ``auto_ping_idle_timeout``
        seconds without incoming data; no PONG within
        ``auto_ping_reply_timeout`` sends CLOSE 1011 ("keepalive ping
        timeout") and disconnects. When the listener overrides
        :any:`WSListener.send_user_specific_ping`, that is sent instead of a
        PING (exchanges that heartbeat with JSON text frames).
    :param auto_ping_strategy: ``WSAutoPingStrategy.PING_WHEN_IDLE`` (ping
        after ``auto_ping_idle_timeout`` seconds without incoming data) or
        ``PING_PERIODICALLY`` (every ``auto_ping_idle_timeout`` seconds,
        whatever arrives).
    :param extra_headers: more headers for the upgrade request (a mapping or
        (name, value) pairs). A ``Host`` (any case) replaces the generated
        one. ``Sec-WebSocket-Protocol`` offers subprotocols: the server's
        101 may then name one of them (``transport.response.headers``), and
        naming another, or any when none was offered, fails the handshake
        (RFC 6455 4.1).
    :param enable_compression: offer permessage-deflate (RFC 7692): True
        for the defaults, or a :any:`WSCompression` (level, window sizes,
        context takeover, ``min_size``). If the server accepts, received
        compressed messages are inflated before ``on_ws_frame`` and whole
        TEXT/BINARY messages sent with ``fin=True`` are compressed (unless
        shorter than ``min_size``, or sent with ``compress=False``).
    :param proxy: connect through a proxy: ``http://`` or ``https://``
        (HTTP CONNECT), ``socks4://``, ``socks4a://``, ``socks5://`` or
        ``socks5h://`` (the last two letters: the proxy resolves the target's
        name), with optional ``user:password@`` (percent-encoded; HTTP proxies
        get them as ``Proxy-Authorization: Basic``). ``True`` takes the proxy
        from the environment as :mod:`urllib.request` does
        (``HTTPS_PROXY`` for ``wss://``, ``HTTP_PROXY`` for ``ws://``, then
        ``ALL_PROXY``; ``NO_PROXY`` bypasses). SOCKS needs the
        ``picows[proxy]`` extra (python-socks). With ``wss://`` TLS runs end
        to end with the target inside the tunnel. The proxy step is bounded by
        ``websocket_handshake_timeout``, and what it leaves of it bounds the
        TLS handshake and the upgrade. Failures raise :any:`WSProxyError`.
    :param proxy_ssl_context: the SSLContext for the TLS connection to an
        ``https://`` proxy (default: ``ssl.create_default_context()``);
        ignored for other proxies.
    :param socket_factory: a function or coroutine function called with a
        :any:`WSParsedURL` of where to connect (the target, or the proxy when
        there is one) that returns a ``socket.socket``, connected or not
        (picows connects it), or None for the usual connect. Cannot be
        combined with ``sock=``.
    :param max_redirects: how many redirects (301, 302, 303, 307, 308, with
        a ``Location`` resolved against the current URL) to follow; 0
        follows none. Never from ``wss://`` to ``ws://``. URL credentials
        are kept only while the redirects stay on the same scheme, host and
        port. When picows gives up, the last response is on the error.
        Not followed with ``sock=`` (that socket is already used).
    :param read_buffer_init_size: the read buffer's first size in bytes (it
        grows to hold the frame being read, and shrinks back after a spike).
    :param max_write_buffer_size: bytes the transport may hold queued for a
        server that does not read; above it the connection is dropped (no
        CLOSE: it would queue too), logged with the peer's address, and
        ``on_ws_disconnected`` runs. None (the default): unbounded, the
        listener's ``pause_writing`` is the only backpressure.
    :return: the :any:`WSTransport` and the listener from the factory.
    :raises WSInvalidURL: (a ValueError) for a URL that cannot be used.
    :raises ValueError: for bad arguments.
    :raises WSHandshakeError: (a WSError) when the server refuses the
        upgrade (:any:`WSInvalidStatusError`, with ``response``,
        ``raw_header`` and ``raw_body``) or answers wrongly
        (:any:`WSInvalidMessageError`, :any:`WSInvalidHeaderError`,
        :any:`WSInvalidUpgradeError`).
    :raises WSProxyError: when connecting through the proxy fails; ``hop``
        says whether the proxy itself or the proxy's way to the target failed.
    :raises asyncio.TimeoutError: when the handshake takes too long.
    """
    if not isinstance(max_redirects, int) or max_redirects < 0:
        raise ValueError("max_redirects must be an int >= 0")
    first = _parse_url(url)
    options = _options(ws_listener_factory, locals())
    logger = options.logger
    headers = _headers_list(extra_headers)
    if options.compression is not None:
        headers.append(("Sec-WebSocket-Extensions", options.compression.offer()))
    user_authorization = any(k.lower() == "authorization" for k, _ in headers)
    subprotocols = [t.strip() for k, v in headers if k.lower() == "sec-websocket-protocol"
                    for t in v.split(",") if t.strip()]
    target = first
    redirects = 0
    while True:
        request_headers = list(headers)
        if target.authorization is not None and not user_authorization:
            request_headers.append(("Authorization", target.authorization))
        try:
            return await _connect_once(
                options, target, request_headers, subprotocols, dict(kwargs),
                ssl_context, websocket_handshake_timeout, proxy, proxy_ssl_context,
                socket_factory, logger_name)
        except WSInvalidStatusError as exc:
            location = exc.response.headers.get("location") if exc.response else None
            if exc.status not in REDIRECT_STATUSES or not location or max_redirects == 0:
                raise
            if redirects >= max_redirects:
                logger.info("giving up after %d redirects", redirects)
                raise
            if "sock" in kwargs:
                # The caller's socket went to the first server; there is no other.
                logger.info("not following a redirect: ws_connect was given sock=")
                raise
            new_url = _redirect_url(url, location)
            new_target = _parse_url(new_url)
            if target.secure and not new_target.secure:
                logger.info("not following the redirect from wss:// to ws:// %s",
                            _redact(new_url))
                raise
            if new_target.authorization is None and _same_origin(target, new_target):
                new_target = new_target._replace(authorization=target.authorization)
            redirects += 1
            logger.debug("%d redirect to %s", exc.status, _redact(new_url))
            url, target = new_url, new_target


async def _connect_once(options: _ConnectionOptions, t: _Target,
                        headers: List[Tuple[str, str]], subprotocols: List[str],
                        kwargs: Dict[str, Any], ssl_context: Union[bool, ssl.SSLContext, None],
                        websocket_handshake_timeout: Optional[float],
                        proxy: Union[str, bool, None],
                        proxy_ssl_context: Optional[ssl.SSLContext],
                        socket_factory: Optional[SocketFactory],
                        logger_name: LoggerName) -> Tuple[WSTransport, WSListener]:
    """One connection attempt to `t` (ws_connect calls it again per redirect)."""
    secure, host, port = t.secure, t.host, t.port
    if secure:
        if ssl_context is None or ssl_context is True:
            ssl_context = ssl.create_default_context()
        elif ssl_context is False:
            raise ValueError("ssl_context=False with a wss:// URL")
        kwargs.setdefault("server_hostname", host)
        if (isinstance(ssl_context, ssl.SSLContext) and ssl_context.check_hostname
                and not kwargs["server_hostname"]):
            # As the ssl module refuses it for sockets; the loops' TLS
            # (over an SSLObject) would skip the host name check instead.
            raise ValueError("check_hostname requires server_hostname")
        kwargs["ssl"] = ssl_context
    else:
        # The context serves wss:// only (so one can be given for every URL).
        ssl_context = None

    key = new_client_key()
    request = build_upgrade_request(t.host_header, t.target, key, headers)

    def protocol_factory() -> WSProtocol:
        return WSProtocol(options, is_client=True, upgrade_request=request,
                          client_key=key, handshake_timeout=handshake_timeout,
                          subprotocols=subprotocols,
                          opened_at=time.monotonic() if whole_opening else None)

    handshake_timeout = websocket_handshake_timeout
    user_tls_timeout = "ssl_handshake_timeout" in kwargs
    loop = asyncio.get_running_loop()
    if proxy not in (None, False) or socket_factory is not None:
        sock, handshake_timeout = await open_socket(
            secure, host, port, t.target, proxy, proxy_ssl_context, socket_factory,
            websocket_handshake_timeout, kwargs, logger_name)
        if sock is not None:
            kwargs["sock"] = sock
    whole_opening = _bound_tls_handshake(kwargs, handshake_timeout, user_tls_timeout)
    kwargs.setdefault("host", host)
    kwargs.setdefault("port", port)
    if "sock" in kwargs:
        kwargs.pop("host")
        kwargs.pop("port")
    if secure and _own_tls(loop, ssl_context):
        assert isinstance(ssl_context, ssl.SSLContext)  # _own_tls checked it
        server_hostname = kwargs.pop("server_hostname")
        tls_timeout = _pop_tls_options(kwargs)
        transport, layer = await loop.create_connection(
            lambda: TLSLayer(ssl_context, False, server_hostname, protocol_factory(),
                             tls_timeout), **kwargs)
        assert layer.handshake_waiter is not None  # set by connection_made (client side)
        # (The layer lets go of it in connection_lost, which may come first.)
        protocol = layer.app_protocol
        try:
            await layer.handshake_waiter
        except BaseException:
            transport.abort()
            raise
    else:
        transport, protocol = await loop.create_connection(protocol_factory, **kwargs)
    assert protocol.handshake_future is not None  # set by connection_made
    try:
        result: Tuple[WSTransport, WSListener] = await protocol.handshake_future
    except BaseException:
        transport.abort()
        raise
    return result


async def ws_create_server(
        ws_listener_factory: ServerListenerFactory,
        host: Union[str, Sequence[str], None] = None,
        port: Optional[int] = None, *,
        disconnect_on_exception: bool = True,
        websocket_handshake_timeout: Optional[float] = 5,
        logger_name: LoggerName = "server",
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        enable_auto_pong: bool = True,
        enable_auto_close: bool = True,
        enable_utf8_validation: bool = True,
        close_timeout: float = 5.0,
        enable_auto_ping: bool = False,
        auto_ping_idle_timeout: float = 20.0,
        auto_ping_reply_timeout: float = 20.0,
        auto_ping_strategy: WSAutoPingStrategy = WSAutoPingStrategy.PING_WHEN_IDLE,
        allowed_origins: Optional[Iterable[str]] = None,
        enable_compression: Union[bool, WSCompression] = False,
        read_buffer_init_size: int = 16 * 1024,
        max_write_buffer_size: Optional[int] = None,
        **kwargs: Any) -> asyncio.Server:
    """Create a websocket server listening on `port` of `host`.

    Extra keyword arguments go to :any:`asyncio.loop.create_server`. With
    ``ssl=`` an SSLContext on the default asyncio loop or uvloop, picows does
    TLS itself, as in :any:`ws_connect`.

    :param ws_listener_factory: called with the :any:`WSUpgradeRequest` of
        every well-formed HTTP/1.1 GET without a body, upgrade or not (a
        plain ``GET /health`` too), before the WebSocket headers are
        checked. It works as a router and returns:

        - a :any:`WSListener`: a standard 101 if the request is a valid
          WebSocket upgrade (else 400, or 426 for another version);
        - a :any:`WSUpgradeResponseWithListener`: the response to send, with
          its listener for a 101 (``WSUpgradeResponse.create_101_response``:
          e.g. the chosen ``Sec-WebSocket-Protocol``, ``Set-Cookie``), or
          without one for any other answer (``create_error_response``,
          ``create_redirect_response``, ``create_ok_response``);
        - None: 404 Not Found.

        Non-101 answers are sent with ``Connection: close`` and the connection
        is closed after them. If the factory raises, the client gets 500 and
        the traceback is logged. Requests that are not HTTP/1.1 GETs without
        a body are answered (400, 405) without calling it, and logged at INFO
        with the peer's address.

        The factory may be a coroutine function (or return any awaitable):
        the upgrade then waits for its result in a task, with reading
        paused (bytes the client sent after the request wait in the buffer
        and are parsed after the 101), and goes on exactly as for the same
        result returned directly; an exception is 500 as above. The
        ``websocket_handshake_timeout`` keeps running meanwhile: a factory
        slower than it has its task cancelled and the connection is dropped
        without an answer; so is a factory whose connection is lost (with
        reading paused, a client's close is noticed at that timeout at the
        latest). Nothing is written after the connection is gone.
    :param host: a str, a sequence of str, or None/"" for all interfaces.
    :param port: the port; 0 or None picks a free one. With ``sock=`` (an
        already bound socket), leave host and port out.
    :param disconnect_on_exception: disconnect (CLOSE 1011) when
        ``on_ws_frame`` raises.
    :param websocket_handshake_timeout: seconds a client has from the TCP
        connection to a complete upgrade request, TLS handshake included
        (with ``ssl=``, unless ``ssl_handshake_timeout`` is given: that then
        bounds TLS alone, and this the upgrade after it), and an async
        listener factory's result; then it is dropped.
    :param logger_name: picows logs on ``picows.<logger_name>``, or on the
        given :class:`logging.Logger` / :class:`logging.LoggerAdapter`.
    :param max_frame_size: a frame declaring a larger payload gets CLOSE 1009.
    :param enable_auto_pong: answer PINGs the listener did not answer itself.
    :param enable_auto_close: answer the peer's CLOSE and close the connection.
    :param enable_utf8_validation: fail TEXT messages that are not UTF-8 (1007).
    :param close_timeout: seconds to wait for the close handshake to finish.
    :param enable_auto_ping: keepalive PINGs, see :any:`ws_connect`.
    :param auto_ping_strategy: when keepalive pings, see :any:`ws_connect`.
    :param allowed_origins: when given, only upgrade requests whose Origin
        header is exactly one of these strings are accepted (others get 403).
    :param enable_compression: accept a client's permessage-deflate offer
        (RFC 7692): True for the defaults, or a :any:`WSCompression`. With
        ``WSCompression(server_no_context_takeover=True)`` every connection
        compresses each message on its own, and :any:`picows.broadcast`
        compresses a message once for all of them. See :any:`ws_connect`.
    :param read_buffer_init_size: the read buffer's first size, see
        :any:`ws_connect`.
    :param max_write_buffer_size: bytes a connection's transport may hold
        queued for a client that does not read; above it that connection is
        dropped and logged with the client's address (see :any:`ws_connect`).
        None (the default): unbounded.
    :return: the :any:`asyncio.Server`.
    """
    options = _options(ws_listener_factory, locals())
    if "sock" in kwargs:
        # An existing socket: asyncio refuses host/port next to it.
        if host not in (None, "") or port not in (None, 0):
            raise ValueError("host/port and sock can not be specified at the same time")
        where: Dict[str, Any] = {}
    else:
        where = {"host": None if host == "" else host, "port": port or 0}

    connections: Set[WSTransport] = set()

    whole_opening = _bound_tls_handshake(kwargs, websocket_handshake_timeout,
                                         "ssl_handshake_timeout" in kwargs)

    def protocol_factory() -> WSProtocol:
        # Made when TCP is accepted, before TLS.
        return WSProtocol(options, is_client=False, connections=connections,
                          opened_at=time.monotonic() if whole_opening else None)

    loop = asyncio.get_running_loop()
    ssl_context = kwargs.get("ssl")
    if _own_tls(loop, ssl_context):
        assert isinstance(ssl_context, ssl.SSLContext)  # _own_tls checked it
        tls_timeout = _pop_tls_options(kwargs)
        server = await loop.create_server(
            lambda: TLSLayer(ssl_context, True, None, protocol_factory(), tls_timeout),
            **where, **kwargs)
    else:
        server = await loop.create_server(protocol_factory, **where, **kwargs)
    _SERVER_CONNECTIONS[server] = connections
    return server


def ws_server_connections(server: asyncio.AbstractServer) -> FrozenSet[WSTransport]:
    """The open websocket connections of a server made by
    :any:`ws_create_server` (those past the handshake and not disconnected
    yet), e.g. for :any:`picows.broadcast`.

    :raises ValueError: for a server that ws_create_server did not make.
    """
    try:
        return frozenset(_SERVER_CONNECTIONS[server])
    except KeyError:
        raise ValueError(f"{server!r} was not made by ws_create_server") from None


async def ws_close_server(server: asyncio.AbstractServer, *,
                          close_code: Union[WSCloseCode, int] = WSCloseCode.GOING_AWAY,
                          close_message: Union[bytes, str, None] = None,
                          timeout: Optional[float] = 5.0) -> None:
    """Shut a server down: stop accepting, send CLOSE (1001 "going away" by
    default) on every open connection, wait until they are disconnected,
    and close the server.

    Connections that have not finished their close handshake within
    ``timeout`` seconds are dropped (``timeout=None`` waits for ever).
    Connections still in the upgrade handshake are closed by the server.

    :param server: a server made by :any:`ws_create_server`.
    :param close_code: the code of the CLOSE frames.
    :param close_message: their reason (at most 123 bytes).
    :param timeout: how long to wait for the peers, in seconds.
    :raises ValueError: for a server that ws_create_server did not make.
    """
    connections = ws_server_connections(server)
    server.close()
    for transport in connections:
        transport.send_close(close_code, close_message)
    if connections:
        waiters = [asyncio.ensure_future(t.wait_disconnected()) for t in connections]
        done, pending = await asyncio.wait(waiters, timeout=timeout)
        for transport in connections:
            transport.disconnect()
        if pending:
            await asyncio.wait(pending)
        for waiter in waiters:
            # wait_disconnected re-raises a client listener's exception; a
            # server's transports have none to give, but keep the loop quiet.
            if not waiter.cancelled():
                waiter.exception()
    await server.wait_closed()
