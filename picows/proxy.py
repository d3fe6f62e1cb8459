"""Proxies and socket factories for ``ws_connect``.

Plain Python that runs once per connection, before the websocket exists: it
turns ``proxy=`` and ``socket_factory=`` into one connected socket, which
ws_connect hands to ``loop.create_connection(sock=...)``. So TLS with the
target (the loop's, or picows' own on the default asyncio loop) and the
upgrade run over the tunnel exactly as over a direct TCP connection, and the
proxy only ever sees the tunnel.

- ``http://``: HTTP CONNECT, written here (``Proxy-Authorization: Basic``).
- ``https://``: the same inside TLS with the proxy. The tunnel's bytes then
  have to be encrypted once more on their way to the proxy, so a small relay
  task pumps them between one end of a socketpair (the socket ws_connect
  gets) and the TLS stream to the proxy. Only this proxy kind has a relay.
- ``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://``: python-socks
  (the ``picows[proxy]`` extra), imported only when such a proxy is used.

Credentials never reach a message or a log line: errors and logs name the
proxy as ``scheme://host:port``.
"""
from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import socket
import ssl
import urllib.parse
import urllib.request
from typing import (Any, Awaitable, Callable, Dict, List, NamedTuple, Optional, Set, Tuple,
                    Union)

from .types import WSProxyError, get_logger

__all__ = [
    "WSParsedURL",
    "ProxyURL",
    "SocketFactory",
    "parse_proxy_url",
    "proxy_from_env",
    "open_socket",
]

MAX_RESPONSE_HEAD = 64 * 1024  # bytes of a CONNECT response head before giving up
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080,
                  "socks5": 1080, "socks5h": 1080}
_SOCKS = ("socks4", "socks4a", "socks5", "socks5h")
# SOCKS replies that mean "the proxy could not reach the target": SOCKS5
# network/host unreachable, connection refused, TTL expired; SOCKS4
# "rejected or failed" (what dante answers when the connect fails).
_SOCKS_TARGET_REPLIES = frozenset({3, 4, 5, 6, 0x5B})
# HTTP statuses that mean the same for CONNECT (tinyproxy: "500 Unable to connect").
_HTTP_TARGET_STATUSES = frozenset({500, 502, 503, 504})


class WSParsedURL(NamedTuple):
    """Where ``ws_connect`` is about to connect; what a ``socket_factory`` gets.

    :ivar scheme: ``"ws"`` or ``"wss"`` for the target; the proxy's scheme
        (``"http"``, ``"socks5"``, ...) when a proxy is used.
    :ivar host: host name or IP address (IPv6 without brackets).
    :ivar port: TCP port.
    :ivar is_secure: True for ``wss://`` and for an ``https://`` proxy.
    :ivar resource_name: the request target (path and query) of a websocket
        URL; ``""`` for a proxy.
    """

    scheme: str
    host: str
    port: int
    is_secure: bool
    resource_name: str


SocketFactory = Callable[
    [WSParsedURL],
    Union[Optional[socket.socket], Awaitable[Optional[socket.socket]]]]


class ProxyURL(NamedTuple):
    """A parsed proxy URL; ``repr`` and ``display`` leave the credentials out."""

    scheme: str
    host: str
    port: int
    username: Optional[str]
    password: Optional[str]

    @property
    def display(self) -> str:
        """``scheme://host:port``: how messages and logs name the proxy."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __repr__(self) -> str:
        auth = ", with credentials" if self.username or self.password else ""
        return f"ProxyURL({self.display}{auth})"

    def scrub(self, text: str) -> str:
        """`text` without the credentials, in case a peer or library echoed them."""
        for secret in (self.password, self.username):
            if secret:
                text = text.replace(secret, "***")
                text = text.replace(urllib.parse.quote(secret, safe=""), "***")
        return text


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse ``scheme://[user[:password]@]host[:port]``.

    Schemes: http, https, socks4, socks4a, socks5, socks5h. Credentials are
    percent-decoded. The message of the ValueError never holds them.
    """
    if not isinstance(url, str):
        raise TypeError(f"proxy must be a str URL, True or None, not {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL: {exc}") from None
    scheme = parts.scheme.lower()
    shown = _without_credentials(parts)
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"invalid proxy URL {shown!r}: the scheme must be one of "
                         f"{', '.join(_DEFAULT_PORTS)}")
    if not parts.hostname:
        raise ValueError(f"invalid proxy URL {shown!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid proxy URL {shown!r}: a proxy URL has no path or query")
    username = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return ProxyURL(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], username, password)


def _without_credentials(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def proxy_from_env(secure: bool, host: str, port: int) -> Optional[str]:
    """The proxy URL the environment gives for a target, or None.

    As urllib.request does: ``getproxies()`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, lowercase first; on Windows and macOS also the system
    settings) and ``proxy_bypass()`` for ``NO_PROXY``. ``wss://`` looks up
    wss, https, then all; ``ws://`` looks up ws, http, then all (as the
    websockets package and aiohttp's ``trust_env`` do).
    """
    proxies = urllib.request.getproxies()
    if _bypassed(host, port):
        return None
    names = ("wss", "https", "all") if secure else ("ws", "http", "all")
    for name in names:
        url = proxies.get(name)
        if url:
            # urllib also accepts "host:port" in these variables: HTTP then.
            return url if "://" in url else f"http://{url}"
    return None


def _bypassed(host: str, port: int) -> bool:
    # proxy_bypass matches NO_PROXY entries against "host" and "host:port";
    # an IPv6 literal is passed bare (its colons would read as a port).
    name = host if ":" in host else f"{host}:{port}"
    return bool(urllib.request.proxy_bypass(name))


def _resolve_proxy(proxy: Union[str, bool, None], target: WSParsedURL) -> Optional[ProxyURL]:
    if proxy is None or proxy is False:
        return None
    if proxy is True:
        url = proxy_from_env(target.is_secure, target.host, target.port)
        return None if url is None else parse_proxy_url(url)
    return parse_proxy_url(proxy)


def _require_python_socks(proxy: ProxyURL) -> None:
    try:
        import python_socks  # noqa: F401
    except ImportError:
        raise ImportError(
            f"a {proxy.scheme}:// proxy needs the python-socks package: "
            "pip install 'picows[proxy]'") from None


# --------------------------------------------------------------------------
# Entry point


async def open_socket(secure: bool, host: str, port: int, resource_name: str,
                      proxy: Union[str, bool, None],
                      proxy_ssl_context: Optional[ssl.SSLContext],
                      socket_factory: Optional[SocketFactory],
                      timeout: Optional[float], kwargs: Dict[str, Any],
                      logger_name: Any) -> Tuple[Optional[socket.socket], Optional[float]]:
    """The connected socket for ws_connect (None: connect as usual) and what
    is left of `timeout` for the rest of the connect.

    The proxy step (connect, TLS with an https proxy, CONNECT or SOCKS) must
    finish within `timeout`, or WSProxyError is raised; the socket is closed
    on every failure. `kwargs` are ws_connect's loop arguments: ``sock=``
    cannot be combined with a proxy or a factory; ``local_addr`` binds the
    socket picows opens; the remaining time also caps ``ssl_handshake_timeout``.
    """
    if socket_factory is not None and not callable(socket_factory):
        raise TypeError("socket_factory must be callable")
    if "sock" in kwargs:
        raise ValueError("sock cannot be combined with proxy or socket_factory")
    target = WSParsedURL("wss" if secure else "ws", host, port, secure, resource_name)
    proxy_url = _resolve_proxy(proxy, target)
    if proxy_url is None and socket_factory is None:
        return None, timeout
    if proxy_url is not None and proxy_url.scheme in _SOCKS:
        _require_python_socks(proxy_url)
    logger = get_logger(logger_name, "client")
    # local_addr binds the socket picows opens to the proxy; a factory's
    # socket is the factory's to bind.
    local_addr = kwargs.pop("local_addr", None) if proxy_url is not None else None
    loop = asyncio.get_running_loop()
    start = loop.time()
    step = _open(loop, target, proxy_url, proxy_ssl_context, socket_factory, local_addr, logger)
    if timeout is None:
        return await step, None
    try:
        sock = await asyncio.wait_for(step, timeout)
    except asyncio.TimeoutError:
        if proxy_url is None:
            raise
        raise WSProxyError(f"no tunnel through proxy {proxy_url.display} to "
                           f"{_hostport(host, port)} within {timeout:g} s",
                           hop="proxy", proxy=proxy_url.display) from None
    left = timeout - (loop.time() - start)
    if left <= 0:
        if sock is not None:
            sock.close()
        raise asyncio.TimeoutError("the connect took longer than websocket_handshake_timeout")
    if secure:
        tls_timeout = kwargs.get("ssl_handshake_timeout")
        kwargs["ssl_handshake_timeout"] = left if tls_timeout is None else min(tls_timeout, left)
    return sock, left


async def _open(loop: asyncio.AbstractEventLoop, target: WSParsedURL,
                proxy: Optional[ProxyURL], proxy_ssl_context: Optional[ssl.SSLContext],
                socket_factory: Optional[SocketFactory], local_addr: Any,
                logger: "logging.Logger | logging.LoggerAdapter[Any]") -> Optional[socket.socket]:
    if proxy is None:
        assert socket_factory is not None
        sock = await _from_factory(loop, socket_factory, target)
        if sock is None:
            return None
        return await _ensure_connected(loop, sock, target.host, target.port)

    logger.debug("connecting to %s through proxy %s", _hostport(target.host, target.port),
                 proxy.display)
    hop = WSParsedURL(proxy.scheme, proxy.host, proxy.port, proxy.scheme == "https", "")
    try:
        sock = None
        if socket_factory is not None:
            sock = await _from_factory(loop, socket_factory, hop)
        if sock is None:
            sock = await _connect_tcp(loop, proxy.host, proxy.port, local_addr)
        else:
            sock = await _ensure_connected(loop, sock, proxy.host, proxy.port)
    except OSError as exc:
        raise WSProxyError(f"cannot connect to proxy {proxy.display}: {proxy.scrub(str(exc))}",
                           hop="proxy", proxy=proxy.display) from None
    try:
        if proxy.scheme == "http":
            await _http_connect(_sock_io(loop, sock), proxy, target.host, target.port)
        elif proxy.scheme == "https":
            sock = await _https_connect(loop, sock, proxy, proxy_ssl_context,
                                        target.host, target.port)
        else:
            sock = await _socks_connect(loop, sock, proxy, target.host, target.port)
    except BaseException:
        sock.close()
        raise
    logger.debug("tunnel to %s through proxy %s is open", _hostport(target.host, target.port),
                 proxy.display)
    return sock


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------
# Sockets: the factory's, or one picows opens


async def _from_factory(loop: asyncio.AbstractEventLoop, factory: SocketFactory,
                        where: WSParsedURL) -> Optional[socket.socket]:
    result = factory(where)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, socket.socket):
        raise TypeError(f"socket_factory returned {type(result).__name__}, "
                        "not a socket.socket or None")
    return result


async def _ensure_connected(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                            host: str, port: int) -> socket.socket:
    """Connect a factory's socket to host:port unless it is connected already."""
    try:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("socket_factory must return a SOCK_STREAM socket")
        sock.setblocking(False)
        try:
            sock.getpeername()
            return sock
        except OSError:
            pass  # not connected yet
        infos = await loop.getaddrinfo(host, port, family=sock.family,
                                       type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address of family {sock.family!r} for {host}")
        await loop.sock_connect(sock, infos[0][4])
        return sock
    except BaseException:
        sock.close()
        raise


async def _connect_tcp(loop: asyncio.AbstractEventLoop, host: str, port: int,
                       local_addr: Any) -> socket.socket:
    """A connected non-blocking TCP socket to the first address that answers."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: Optional[OSError] = None
    for family, type_, proto, _, address in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            if local_addr is not None:
                sock.bind(local_addr)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"no address for {host}")


# --------------------------------------------------------------------------
# HTTP CONNECT


class _IO(NamedTuple):
    send: Callable[[bytes], Awaitable[None]]
    recv: Callable[[int], Awaitable[bytes]]


def _sock_io(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> _IO:
    return _IO(lambda data: loop.sock_sendall(sock, data), lambda n: loop.sock_recv(sock, n))


def connect_request(proxy: ProxyURL, host: str, port: int) -> bytes:
    """The CONNECT request head for host:port (RFC 9110 9.3.6)."""
    authority = _hostport(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.username is not None or proxy.password is not None:
        pair = f"{proxy.username or ''}:{proxy.password or ''}".encode("utf-8")
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(pair).decode('ascii')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def parse_connect_response(head: bytes) -> Tuple[int, str]:
    """(status, reason) from a response head (without the blank line).

    ValueError when the status line is not ``HTTP/1.x NNN reason``.
    """
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    if (len(parts) < 2 or parts[0] not in (b"HTTP/1.0", b"HTTP/1.1")
            or len(parts[1]) != 3 or not parts[1].isdigit()):
        raise ValueError(f"not an HTTP/1.x status line: {line[:80]!r}")
    reason = parts[2].decode("latin-1") if len(parts) == 3 else ""
    reason = "".join(c if c.isprintable() else "?" for c in reason.strip())[:200]
    return int(parts[1]), reason


async def _http_connect(io: _IO, proxy: ProxyURL, host: str, port: int) -> None:
    def fail(what: str, hop: str = "proxy", status: Optional[int] = None,
             reason: Optional[str] = None) -> WSProxyError:
        return WSProxyError(f"proxy {proxy.display} {what}", hop=hop, proxy=proxy.display,
                            status=status, reason=reason)

    try:
        await io.send(connect_request(proxy, host, port))
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > MAX_RESPONSE_HEAD:
                raise fail(f"sent a CONNECT response head longer than {MAX_RESPONSE_HEAD} bytes")
            chunk = await io.recv(4096)
            if not chunk:
                raise fail("closed the connection before answering CONNECT"
                           if not buf else "closed the connection mid-response to CONNECT")
            buf += chunk
    except (OSError, ssl.SSLError) as exc:
        raise fail(f"failed during CONNECT: {proxy.scrub(str(exc))}") from None
    try:
        status, reason = parse_connect_response(buf[:end])
    except ValueError as exc:
        raise fail(f"answered CONNECT with garbage: {exc}") from None
    if not 200 <= status < 300:
        hop = "target" if status in _HTTP_TARGET_STATUSES else "proxy"
        where = f" to {_hostport(host, port)}" if hop == "target" else ""
        raise fail(f"refused the tunnel{where}: {status} {reason}".rstrip(), hop, status,
                   reason)
    if len(buf) > end + 4:
        # The target speaks only after we do (upgrade request, ClientHello).
        raise fail("sent data after its CONNECT response")


# --------------------------------------------------------------------------
# HTTPS proxy: CONNECT inside TLS with the proxy, and a relay


_RELAYS: Set["asyncio.Task[None]"] = set()  # strong references to running relays


async def _https_connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: ProxyURL,
                         ssl_context: Optional[ssl.SSLContext],
                         host: str, port: int) -> socket.socket:
    if ssl_context is None:
        ssl_context = ssl.create_default_context()
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=ssl_context, server_hostname=proxy.host, limit=MAX_RESPONSE_HEAD)
    except (OSError, ssl.SSLError) as exc:
        raise WSProxyError(f"TLS with proxy {proxy.display} failed: {proxy.scrub(str(exc))}",
                           hop="proxy", proxy=proxy.display) from None

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        await _http_connect(_IO(send, reader.read), proxy, host, port)
        app_end, relay_end = socket.socketpair()
    except BaseException:
        writer.transport.abort()
        raise
    relay_end.setblocking(False)
    task = loop.create_task(_relay(loop, relay_end, reader, writer))
    _RELAYS.add(task)
    task.add_done_callback(_RELAYS.discard)
    return app_end


async def _relay(loop: asyncio.AbstractEventLoop, local: socket.socket,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pump bytes both ways until either side ends; then close both."""

    async def up() -> None:  # websocket -> proxy
        while True:
            data = await loop.sock_recv(local, 65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    async def down() -> None:  # proxy -> websocket
        while True:
            data = await reader.read(65536)
            if not data:
                return
            await loop.sock_sendall(local, data)

    tasks: List["asyncio.Task[None]"] = [loop.create_task(up()), loop.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        local.close()
        writer.transport.abort()


# --------------------------------------------------------------------------
# SOCKS, through python-socks


class _Handover:
    """python-socks' ``forward`` hook (for proxy chains), used to hand it the
    socket picows already connected to the proxy (or the factory's), so
    that the connect step is the same for every proxy kind."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def connect(self, dest_host: str, dest_port: int, timeout: Optional[float] = None,
                      **kwargs: Any) -> socket.socket:
        return self._sock


async def _socks_connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: ProxyURL,
                         host: str, port: int) -> socket.socket:
    from python_socks import ProxyError, ProxyTimeoutError, ProxyType
    from python_socks.async_.asyncio import Proxy

    kind = ProxyType.SOCKS4 if proxy.scheme.startswith("socks4") else ProxyType.SOCKS5
    client = Proxy(kind, proxy.host, proxy.port, proxy.username, proxy.password,
                   rdns=proxy.scheme in ("socks4a", "socks5h"),
                   forward=_Handover(sock),  # type: ignore[arg-type]
                   loop=loop)
    try:
        # No timeout of its own (it would default to 60 s): ours bounds it.
        return await client.connect(host, port, timeout=3600)
    except ProxyError as exc:
        code = exc.error_code
        hop = "target" if code in _SOCKS_TARGET_REPLIES else "proxy"
        where = f" to {_hostport(host, port)}" if hop == "target" else ""
        raise WSProxyError(f"proxy {proxy.display} refused the tunnel{where}: "
                           f"{proxy.scrub(str(exc))}", hop=hop, proxy=proxy.display,
                           status=code, reason=proxy.scrub(str(exc))) from None
    except (OSError, ProxyTimeoutError) as exc:
        raise WSProxyError(f"proxy {proxy.display} failed during the SOCKS handshake: "
                           f"{proxy.scrub(str(exc)) or type(exc).__name__}",
                           hop="proxy", proxy=proxy.display) from None
