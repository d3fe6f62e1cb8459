"""ws_connect and ws_create_server: argument checks, URLs and the loop calls.

Plain Python: this runs once per connection. The protocol itself is
``picows.picows.WSProtocol``.
"""
from __future__ import annotations

import asyncio
import os
import ssl
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

from .handshake import DEFLATE_OFFER, build_upgrade_request, new_client_key
from .picows import TLSLayer, WSListener, WSProtocol, WSTransport, _ConnectionOptions
from .proxy import SocketFactory, open_socket
from .types import WSUpgradeRequest

__all__ = ["ws_connect", "ws_create_server"]

DEFAULT_MAX_FRAME_SIZE = 10 * 1024 * 1024

ExtraHeaders = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]


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


def _pop_tls_options(kwargs: Dict[str, Any]) -> Optional[float]:
    """Take the loop's TLS arguments out of `kwargs`; return the handshake
    timeout (None: asyncio's default, 60 s)."""
    kwargs.pop("ssl", None)
    kwargs.pop("ssl_shutdown_timeout", None)
    timeout: Optional[float] = kwargs.pop("ssl_handshake_timeout", None)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"ssl_handshake_timeout should be a positive number, got {timeout}")
    return timeout


def _parse_url(url: str) -> Tuple[bool, str, int, str, str]:
    """Return (secure, host, port, host header, request target)."""
    if not isinstance(url, str):
        raise ValueError(f"url must be a str, not {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid websocket URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"invalid websocket URL {url!r}: the scheme must be ws or wss")
    if not parts.hostname:
        raise ValueError(f"invalid websocket URL {url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"invalid websocket URL {url!r}: credentials are not supported")
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
    if any(c in target for c in " \r\n"):
        raise ValueError(f"invalid websocket URL {url!r}: whitespace in the path")
    return secure, host, port, host_header, target


async def ws_connect(ws_listener_factory: Callable[[], WSListener], url: str, *,
                     ssl_context: Union[bool, ssl.SSLContext, None] = None,
                     disconnect_on_exception: bool = True,
                     logger_name: str = "client",
                     websocket_handshake_timeout: Optional[float] = 5,
                     max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                     enable_auto_pong: bool = True,
                     enable_auto_close: bool = True,
                     enable_utf8_validation: bool = True,
                     close_timeout: float = 5.0,
                     enable_auto_ping: bool = False,
                     auto_ping_idle_timeout: float = 20.0,
                     auto_ping_reply_timeout: float = 20.0,
                     extra_headers: ExtraHeaders = None,
                     enable_compression: bool = False,
                     proxy: Union[str, bool, None] = None,
                     proxy_ssl_context: Optional[ssl.SSLContext] = None,
                     socket_factory: Optional[SocketFactory] = None,
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

    :param ws_listener_factory: a parameterless factory returning the
        :any:`WSListener` that handles the connection.
    :param url: ``ws://host[:port]/path?query`` or ``wss://...``.
    :param ssl_context: an SSLContext to use for ``wss://`` instead of the
        default one (``ssl.create_default_context()``).
    :param disconnect_on_exception: disconnect (CLOSE 1011) when
        ``on_ws_frame`` raises; the exception is then raised again by
        :any:`WSTransport.wait_disconnected`.
    :param logger_name: picows logs on ``picows.<logger_name>``.
    :param websocket_handshake_timeout: seconds to wait for the server's
        upgrade response; :class:`asyncio.TimeoutError` after that.
    :param max_frame_size: a frame declaring a larger payload gets CLOSE 1009.
    :param enable_auto_pong: answer PINGs the listener did not answer itself.
    :param enable_auto_close: answer the peer's CLOSE and close the connection.
    :param enable_utf8_validation: fail TEXT messages that are not UTF-8 (1007).
    :param close_timeout: seconds to wait for the server to finish the close
        handshake and close TCP before disconnecting anyway.
    :param enable_auto_ping: send a PING after ``auto_ping_idle_timeout``
        seconds without incoming data; no PONG within
        ``auto_ping_reply_timeout`` disconnects.
    :param extra_headers: more headers for the upgrade request.
    :param enable_compression: offer permessage-deflate (RFC 7692). If the
        server accepts, received compressed messages are inflated before
        ``on_ws_frame`` and whole TEXT/BINARY messages sent with ``fin=True``
        are compressed.
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
    :return: the :any:`WSTransport` and the listener from the factory.
    :raises ValueError: for a malformed URL or bad arguments.
    :raises WSError: when the server refuses the upgrade or answers wrongly.
    :raises WSProxyError: when connecting through the proxy fails; ``hop``
        says whether the proxy itself or the proxy's way to the target failed.
    :raises asyncio.TimeoutError: when the handshake takes too long.
    """
    secure, host, port, host_header, target = _parse_url(url)
    options = _ConnectionOptions(
        ws_listener_factory, logger_name=logger_name,
        disconnect_on_exception=disconnect_on_exception,
        websocket_handshake_timeout=websocket_handshake_timeout,
        max_frame_size=max_frame_size, enable_auto_pong=enable_auto_pong,
        enable_auto_close=enable_auto_close, enable_utf8_validation=enable_utf8_validation,
        close_timeout=close_timeout, enable_auto_ping=enable_auto_ping,
        auto_ping_idle_timeout=auto_ping_idle_timeout,
        auto_ping_reply_timeout=auto_ping_reply_timeout,
        enable_compression=enable_compression)

    if secure:
        if ssl_context is None or ssl_context is True:
            ssl_context = ssl.create_default_context()
        elif ssl_context is False:
            raise ValueError("ssl_context=False with a wss:// URL")
        kwargs.setdefault("server_hostname", host)
        kwargs["ssl"] = ssl_context
    elif ssl_context not in (None, False):
        raise ValueError("ssl_context given with a ws:// URL; use wss://")

    key = new_client_key()
    headers = list(extra_headers.items() if isinstance(extra_headers, Mapping)
                   else extra_headers or ())
    if enable_compression:
        headers.append(("Sec-WebSocket-Extensions", DEFLATE_OFFER))
    request = build_upgrade_request(host_header, target, key, headers)

    def protocol_factory() -> WSProtocol:
        return WSProtocol(options, is_client=True, upgrade_request=request,
                          client_key=key, handshake_timeout=handshake_timeout)

    handshake_timeout = websocket_handshake_timeout
    loop = asyncio.get_running_loop()
    if proxy not in (None, False) or socket_factory is not None:
        sock, handshake_timeout = await open_socket(
            secure, host, port, target, proxy, proxy_ssl_context, socket_factory,
            websocket_handshake_timeout, kwargs, logger_name)
        if sock is not None:
            kwargs["sock"] = sock
    kwargs.setdefault("host", host)
    kwargs.setdefault("port", port)
    if "sock" in kwargs:
        kwargs.pop("host")
        kwargs.pop("port")
    if secure and _own_tls(loop, ssl_context):
        server_hostname = kwargs.pop("server_hostname")
        tls_timeout = _pop_tls_options(kwargs)
        transport, layer = await loop.create_connection(
            lambda: TLSLayer(ssl_context, False, server_hostname, protocol_factory(),
                             tls_timeout), **kwargs)
        try:
            await layer.handshake_waiter
        except BaseException:
            transport.abort()
            raise
        protocol = layer.app_protocol
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
        ws_listener_factory: Callable[[WSUpgradeRequest], Optional[WSListener]],
        host: Union[str, Sequence[str], None] = None,
        port: Optional[int] = None, *,
        disconnect_on_exception: bool = True,
        websocket_handshake_timeout: Optional[float] = 5,
        logger_name: str = "server",
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        enable_auto_pong: bool = True,
        enable_auto_close: bool = True,
        enable_utf8_validation: bool = True,
        close_timeout: float = 5.0,
        enable_auto_ping: bool = False,
        auto_ping_idle_timeout: float = 20.0,
        auto_ping_reply_timeout: float = 20.0,
        allowed_origins: Optional[Iterable[str]] = None,
        enable_compression: bool = False,
        **kwargs: Any) -> asyncio.Server:
    """Create a websocket server listening on `port` of `host`.

    Extra keyword arguments go to :any:`asyncio.loop.create_server`. With
    ``ssl=`` an SSLContext on the default asyncio loop or uvloop, picows does
    TLS itself, as in :any:`ws_connect`.

    :param ws_listener_factory: called with the :any:`WSUpgradeRequest` of
        every connection; returns the :any:`WSListener` for it, or None to
        answer 404 Not Found and disconnect. It works as a router. If it
        raises, the client gets 500 and the traceback is logged.
    :param host: a str, a sequence of str, or None/"" for all interfaces.
    :param port: the port; 0 or None picks a free one.
    :param disconnect_on_exception: disconnect (CLOSE 1011) when
        ``on_ws_frame`` raises.
    :param websocket_handshake_timeout: seconds a client has to send a
        complete upgrade request before it is dropped.
    :param logger_name: picows logs on ``picows.<logger_name>``.
    :param max_frame_size: a frame declaring a larger payload gets CLOSE 1009.
    :param enable_auto_pong: answer PINGs the listener did not answer itself.
    :param enable_auto_close: answer the peer's CLOSE and close the connection.
    :param enable_utf8_validation: fail TEXT messages that are not UTF-8 (1007).
    :param close_timeout: seconds to wait for the close handshake to finish.
    :param enable_auto_ping: keepalive PINGs, see :any:`ws_connect`.
    :param allowed_origins: when given, only upgrade requests whose Origin
        header is exactly one of these strings are accepted (others get 403).
    :param enable_compression: accept a client's permessage-deflate offer
        (RFC 7692), see :any:`ws_connect`.
    :return: the :any:`asyncio.Server`.
    """
    options = _ConnectionOptions(
        ws_listener_factory, logger_name=logger_name,
        disconnect_on_exception=disconnect_on_exception,
        websocket_handshake_timeout=websocket_handshake_timeout,
        max_frame_size=max_frame_size, enable_auto_pong=enable_auto_pong,
        enable_auto_close=enable_auto_close, enable_utf8_validation=enable_utf8_validation,
        close_timeout=close_timeout, enable_auto_ping=enable_auto_ping,
        auto_ping_idle_timeout=auto_ping_idle_timeout,
        auto_ping_reply_timeout=auto_ping_reply_timeout,
        allowed_origins=allowed_origins, enable_compression=enable_compression)
    if port is None:
        port = 0

    def protocol_factory() -> WSProtocol:
        return WSProtocol(options, is_client=False)

    loop = asyncio.get_running_loop()
    if host == "":
        host = None
    ssl_context = kwargs.get("ssl")
    if _own_tls(loop, ssl_context):
        tls_timeout = _pop_tls_options(kwargs)
        return await loop.create_server(
            lambda: TLSLayer(ssl_context, True, None, protocol_factory(), tls_timeout),
            host, port, **kwargs)
    return await loop.create_server(protocol_factory, host, port, **kwargs)
