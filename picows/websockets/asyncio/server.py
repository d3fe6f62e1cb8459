"""serve(), Server and ServerConnection, as websockets.asyncio.server, over
ws_create_server."""
from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import hashlib
import hmac
import http
import inspect
import logging
import socket
import sys
from typing import (Any, Awaitable, Callable, Dict, Generator, Iterable, Optional, Pattern,
                    Sequence, Set, Tuple, Type, Union, cast)

from ... import __version__
from ...compression import WSCompression
from ...api import ws_create_server
from ...handshake import accept_key
from ...types import WSUpgradeRequest
from ..datastructures import Headers
from ..exceptions import InvalidHandshake, InvalidOrigin, NegotiationError
from ..frames import CloseCode
from ..http11 import Request, Response
from ..protocol import State
from . import _upgrade
from ._options import (ConnectionOptions, MaxSize, WriteLimit, checked_subprotocols,
                       server_compression)
from .broadcast import broadcast
from .connection import Connection, LoggerLike, _LONG_TIMEOUT, parse_max_size

__all__ = ["serve", "unix_serve", "Server", "ServerConnection", "basic_auth", "broadcast"]

USER_AGENT = (f"Python/{sys.version_info[0]}.{sys.version_info[1]} "
              f"picows.websockets/{__version__}")

Handler = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[["ServerConnection", Request],
                          Union[Optional[Response], Awaitable[Optional[Response]]]]
ProcessResponse = Callable[["ServerConnection", Request, Response],
                           Union[Optional[Response], Awaitable[Optional[Response]]]]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], Optional[str]]


class ServerConnection(Connection):
    """The server side of a connection (see :class:`Connection`)."""

    def __init__(self, server: "Server", **kwargs: Any) -> None:
        kwargs.setdefault("is_client", False)
        super().__init__(**kwargs)
        self.server = server
        self.username: Optional[str] = None
        """Set by :func:`basic_auth` to the authenticated user."""

    def respond(self, status: Union[int, http.HTTPStatus], text: str) -> Response:
        """A plain-text HTTP response, to return from ``process_request``.

        :param status: the HTTP status code.
        :param text: the body (sent as UTF-8).
        """
        status = http.HTTPStatus(status)
        body = text.encode()
        headers = Headers([
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ])
        return Response(status.value, status.phrase, headers, body)

    def on_ws_connected(self, transport: Any) -> None:
        super().on_ws_connected(transport)
        self.server._start_handler(self)


class Server:
    """A WebSocket server, as websockets' ``asyncio.server.Server``.

    :ivar server: the :class:`asyncio.Server` under it.
    """

    def __init__(self, handler: Handler, logger: Optional[LoggerLike] = None) -> None:
        self.handler = handler
        self.logger: LoggerLike = logger or logging.getLogger("websockets.server")
        self.handlers: Dict[ServerConnection, "asyncio.Task[None]"] = {}
        self.server: asyncio.Server
        self.loop = asyncio.get_running_loop()
        self.close_task: Optional["asyncio.Task[None]"] = None
        self.closed_waiter: asyncio.Future[None] = self.loop.create_future()

    def wrap(self, server: asyncio.Server) -> None:
        self.server = server
        for sock in server.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple) and len(name) >= 2:
                self.logger.info("server listening on %s:%d", *name[:2])

    @property
    def connections(self) -> Set[ServerConnection]:
        """The open connections (those whose handler runs)."""
        return {c for c in self.handlers if c.state is State.OPEN}

    def _start_handler(self, connection: ServerConnection) -> None:
        self.handlers[connection] = self.loop.create_task(self._run_handler(connection))

    async def _run_handler(self, connection: ServerConnection) -> None:
        try:
            try:
                await self.handler(connection)
            except Exception:
                connection.logger.error("connection handler failed", exc_info=True)
                await connection.close(CloseCode.INTERNAL_ERROR)
            else:
                await connection.close()
        finally:
            self.handlers.pop(connection, None)

    def close(self, close_connections: bool = True) -> None:
        """Stop listening and, unless `close_connections` is False, close
        every connection with 1001 (going away). Returns at once; await
        :meth:`wait_closed` for the end."""
        if self.close_task is None:
            self.close_task = self.loop.create_task(self._close(close_connections))

    async def _close(self, close_connections: bool) -> None:
        self.logger.info("server closing")
        self.server.close()
        await asyncio.sleep(0)
        if close_connections:
            closes = [c.close(CloseCode.GOING_AWAY) for c in self.handlers
                      if c.state is State.OPEN]
            if closes:
                await asyncio.gather(*closes, return_exceptions=True)
        await self.server.wait_closed()
        tasks = list(self.handlers.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.closed_waiter.set_result(None)
        self.logger.info("server closed")

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every handler has returned."""
        await asyncio.shield(self.closed_waiter)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.server.get_loop()

    def is_serving(self) -> bool:
        return self.server.is_serving()

    async def start_serving(self) -> None:
        await self.server.start_serving()

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    @property
    def sockets(self) -> Tuple[Any, ...]:
        return tuple(self.server.sockets)

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()


def _origin_ok(origin: Optional[str],
               origins: Sequence[Union[str, Pattern[str], None]]) -> bool:
    for allowed in origins:
        if allowed is None:
            if origin is None:
                return True
        elif origin is None:
            continue
        elif isinstance(allowed, str):
            if origin == allowed:
                return True
        elif allowed.fullmatch(origin):
            return True
    return False


def _refuse_awaitable(result: object, message: str) -> None:
    """Raise TypeError(message) if a callback that the core's listener
    factory runs synchronously returned an awaitable (closing a coroutine, so
    that it is not reported as never awaited)."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError(message)


class serve(ConnectionOptions):
    """Create a WebSocket server listening on `host` and `port`; run
    ``handler(connection)`` for every connection.

    Awaiting it returns the :class:`Server`; ``async with`` closes the server
    on exit. Parameters and defaults are those of websockets' ``serve``:

    :param handler: a coroutine function taking the :class:`ServerConnection`;
        the connection is closed (1000) when it returns, 1011 if it raises.
    :param origins: acceptable ``Origin`` values (str, compiled regex, or
        None for "no Origin header"); others get 403.
    :param subprotocols: the subprotocols the server supports, by preference.
    :param select_subprotocol: ``(connection, client_subprotocols) -> str |
        None`` instead of the default choice.
    :param compression: ``"deflate"`` (websockets' default settings:
        12-bit windows both ways, memLevel 5), None, or (picows only) a
        :class:`picows.WSCompression`.
    :param process_request: ``(connection, request) -> Response | None``,
        called before the handshake: a response is sent instead of the
        upgrade (see ``connection.respond``). A function or a coroutine
        function (the upgrade then waits for it, reading paused).
    :param process_response: ``(connection, request, response) -> Response |
        None``: may change the 101 or replace it. A function or a coroutine
        function.
    :param server_header: the ``Server`` header value; None sends none.
    :param open_timeout: seconds a client has for its upgrade request and
        for async ``process_request`` / ``process_response`` to answer.
    :param ping_interval, ping_timeout, close_timeout, max_size, max_queue,
        write_limit: as for ``connect``.
    :param logger: logger (default ``websockets.server``).
    :param create_connection: a :class:`ServerConnection` subclass.
    :param kwargs: ``ssl``, ``sock``, ``reuse_port``... of
        :meth:`asyncio.loop.create_server`.
    """

    def __init__(self, handler: Handler, host: Optional[str] = None,
                 port: Optional[int] = None, *,
                 origins: Optional[Sequence[Union[str, Pattern[str], None]]] = None,
                 extensions: Optional[Sequence[Any]] = None,
                 subprotocols: Optional[Sequence[str]] = None,
                 select_subprotocol: Optional[SelectSubprotocol] = None,
                 compression: Union[str, WSCompression, None] = "deflate",
                 process_request: Optional[ProcessRequest] = None,
                 process_response: Optional[ProcessResponse] = None,
                 server_header: Optional[str] = USER_AGENT,
                 open_timeout: Optional[float] = 10,
                 ping_interval: Optional[float] = 20,
                 ping_timeout: Optional[float] = 20,
                 close_timeout: Optional[float] = 10,
                 max_size: MaxSize = 2 ** 20,
                 max_queue: MaxSize = 16,
                 write_limit: WriteLimit = 2 ** 15,
                 logger: Optional[LoggerLike] = None,
                 create_connection: Optional[Type[ServerConnection]] = None,
                 **kwargs: Any) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.origins = origins
        self.subprotocols = checked_subprotocols(compression, extensions, subprotocols)
        self.select_subprotocol = select_subprotocol
        self.compression = compression
        self.process_request = process_request
        self.process_response = process_response
        self.server_header = server_header
        self.open_timeout = open_timeout
        self._keep_connection_options(
            ping_interval, ping_timeout, close_timeout, max_size, max_queue, write_limit,
            logger or logging.getLogger("websockets.server"))
        self.create_connection = create_connection or ServerConnection
        self.kwargs = kwargs
        self.server: Optional[Server] = None

    def __await__(self) -> Generator[Any, None, Server]:
        return self._create().__await__()

    async def __aenter__(self) -> Server:
        return await self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _create(self) -> Server:
        server = self.server = Server(self.handler, self.logger)
        _, frame_limit = parse_max_size(self.max_size)
        kwargs = dict(self.kwargs)
        if kwargs.get("ssl") is True:
            raise ValueError("ssl=True is for clients; pass an SSLContext")
        if kwargs.get("ssl") is not None and self.open_timeout is not None:
            # open_timeout bounds the TLS handshake too, as in websockets.
            kwargs.setdefault("ssl_handshake_timeout", self.open_timeout)
        asyncio_server = await ws_create_server(
            lambda request: self._upgrade(server, request),
            self.host, self.port,
            logger_name="websockets.server",
            websocket_handshake_timeout=self.open_timeout,
            max_frame_size=frame_limit,
            close_timeout=self.close_timeout or _LONG_TIMEOUT,
            enable_compression=server_compression(self.compression),
            **kwargs)
        server.wrap(asyncio_server)
        return server

    # -- the opening handshake, as websockets decides it ---------------------

    # process_request and process_response may be coroutine functions, as in
    # websockets: when one returns an awaitable, _upgrade returns a coroutine
    # that finishes the decision, and the core's listener factory awaits it
    # with the upgrade paused. Synchronous hooks decide at once (no task).

    def _upgrade(self, server: Server, core_request: WSUpgradeRequest) -> Any:
        connection = self.create_connection(server, **self._connection_options())
        headers = core_request.headers
        request = Request(core_request.path.decode("latin-1"),
                          Headers(headers.items() if hasattr(headers, "items") else headers))
        connection.request = request
        try:
            response = self._response(connection, request)
        except Exception as exc:
            response = self._failed(connection, exc)
        if isinstance(response, Response):
            return self._decided(connection, response)
        return self._upgrade_later(server, connection, response)

    async def _upgrade_later(self, server: Server, connection: ServerConnection,
                             pending: Awaitable[Response]) -> Any:
        try:
            response = await pending
        except Exception as exc:
            response = self._failed(connection, exc)
        if response.status_code == 101 and server.close_task is not None:
            # The server started closing while a hook ran (websockets does the same).
            response = connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE,
                                          "Server is shutting down.\n")
        return self._decided(connection, response)

    def _failed(self, connection: ServerConnection, exc: Exception) -> Response:
        self.logger.error("opening handshake failed", exc_info=exc)
        response = connection.respond(
            http.HTTPStatus.INTERNAL_SERVER_ERROR,
            "Failed to open a WebSocket connection.\n"
            "See server log for more information.\n")
        response._exception = exc
        return response

    def _decided(self, connection: ServerConnection, response: Response) -> Any:
        connection.response = response
        if response.status_code == 101:
            subprotocol = response.headers.get("Sec-WebSocket-Protocol")
            if subprotocol is not None:
                connection.subprotocol = subprotocol
        else:
            connection.state = State.CLOSED
        return _upgrade.to_core_response(response, connection)

    def _response(self, connection: ServerConnection,
                  request: Request) -> Union[Response, Awaitable[Response]]:
        if self.origins is not None:
            origin = request.headers.get("Origin")
            if not _origin_ok(origin, self.origins):
                exc = InvalidOrigin(origin)
                refusal = connection.respond(
                    http.HTTPStatus.FORBIDDEN, f"Failed to open a WebSocket connection: {exc}.\n")
                refusal._exception = exc
                return refusal
        response: Optional[Response] = None
        if self.process_request is not None:
            result = self.process_request(connection, request)
            if inspect.isawaitable(result):
                return self._after_async_request(connection, request, result)
            response = result
        return self._after_request(connection, request, response)

    async def _after_async_request(self, connection: ServerConnection, request: Request,
                                   pending: Awaitable[Optional[Response]]) -> Response:
        decided = self._after_request(connection, request, await pending)
        if isinstance(decided, Response):
            return decided
        return await decided

    def _after_request(self, connection: ServerConnection, request: Request,
                       response: Optional[Response]) -> Union[Response, Awaitable[Response]]:
        """What follows process_request's answer `response`."""
        if response is None and "Sec-WebSocket-Key" not in request.headers:
            # process_request may edit the request; the core validated it before.
            response = connection.respond(
                http.HTTPStatus.BAD_REQUEST,
                "Failed to open a WebSocket connection: missing Sec-WebSocket-Key header.\n")
        if response is None:
            try:
                response = self._switch(connection, request)
            except InvalidHandshake as exc:
                response = connection.respond(
                    http.HTTPStatus.BAD_REQUEST,
                    f"Failed to open a WebSocket connection: {exc}.\n")
                response._exception = exc
                return response
            if self.process_response is not None:
                new = self.process_response(connection, request, response)
                if inspect.isawaitable(new):
                    return self._after_async_response(response, new)
                if new is not None:
                    response = new
        return self._with_server_header(response)

    async def _after_async_response(self, response: Response,
                                    pending: Awaitable[Optional[Response]]) -> Response:
        new = await pending
        return self._with_server_header(response if new is None else new)

    def _with_server_header(self, response: Response) -> Response:
        if self.server_header is not None and "Server" not in response.headers:
            response.headers["Server"] = self.server_header
        return response

    def _switch(self, connection: ServerConnection, request: Request) -> Response:
        """The 101 websockets would send (the core adds the extension)."""
        headers = Headers()
        headers["Date"] = email.utils.formatdate(usegmt=True)
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        key = request.headers.get("Sec-WebSocket-Key")
        if key is not None:
            headers["Sec-WebSocket-Accept"] = accept_key(key)
        offered = [p.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol")
                   for p in value.split(",") if p.strip()]
        subprotocol: Optional[str] = None
        if self.select_subprotocol is not None:
            # Synchronous in websockets too.
            subprotocol = self.select_subprotocol(connection, offered)
            _refuse_awaitable(subprotocol, "select_subprotocol must be synchronous")
        elif self.subprotocols:
            for candidate in self.subprotocols:
                if candidate in offered:
                    subprotocol = candidate
                    break
            else:
                if not offered:
                    raise NegotiationError("missing subprotocol")
                raise NegotiationError("invalid subprotocol; expected one of "
                                       + ", ".join(self.subprotocols))
        if subprotocol is not None:
            headers["Sec-WebSocket-Protocol"] = subprotocol
        return Response(101, "Switching Protocols", headers, b"")


def unix_serve(handler: Handler, path: Optional[str] = None, **kwargs: Any) -> serve:
    """:class:`serve` on a Unix socket at `path` (or ``sock=``, a listening
    Unix socket)."""
    sock = kwargs.pop("sock", None)
    if path is None and sock is None:
        raise ValueError("path was not specified, and no sock specified")
    if path is not None and sock is not None:
        raise ValueError("path and sock can not be specified at the same time")
    if sock is None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(cast(str, path))
        except BaseException:
            sock.close()
            raise
    return serve(handler, sock=sock, **kwargs)


# -- basic_auth ------------------------------------------------------------------

def basic_auth(realm: str = "",
               credentials: Union[Tuple[str, str], Iterable[Tuple[str, str]], None] = None,
               check_credentials: Optional[
                   Callable[[str, str], Union[bool, Awaitable[bool]]]] = None,
               ) -> Callable[[ServerConnection, Request],
                             Union[Optional[Response], Awaitable[Optional[Response]]]]:
    """A ``process_request`` that demands HTTP Basic Auth.

    Give either `credentials` (a ``(username, password)`` pair or several)
    or `check_credentials(username, password) -> bool`, a function or a
    coroutine function.
    Authenticated requests go on with ``connection.username`` set; others
    get 401 with ``WWW-Authenticate``.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("provide either credentials or check_credentials")
    if credentials is not None:
        if isinstance(credentials, tuple) and len(credentials) == 2 and all(
                isinstance(x, str) for x in credentials):
            pairs = [cast(Tuple[str, str], credentials)]
        else:
            try:
                pairs = list(cast(Iterable[Tuple[str, str]], credentials))
            except TypeError:
                raise TypeError(f"invalid credentials argument: {credentials}") from None
            if not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                raise TypeError(f"invalid credentials argument: {credentials}")
        table = dict(pairs)

        def check_credentials(username: str, password: str) -> bool:
            expected = table.get(username)
            if expected is None:
                return False
            return hmac.compare_digest(hashlib.sha256(expected.encode()).digest(),
                                       hashlib.sha256(password.encode()).digest())

    check = cast(Callable[[str, str], Union[bool, Awaitable[bool]]], check_credentials)

    def process_request(connection: ServerConnection, request: Request
                        ) -> Union[Optional[Response], Awaitable[Optional[Response]]]:
        header = request.headers.get("Authorization")
        if header is None:
            return _unauthorized(connection, realm, "Missing credentials\n")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError
            username, sep, password = base64.b64decode(
                token.strip(), validate=True).decode().partition(":")
            if not sep:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return _unauthorized(connection, realm, "Unsupported credentials\n")
        result = check(username, password)
        if inspect.isawaitable(result):
            return _checked_later(connection, realm, username, result)
        return _checked(connection, realm, username, result)

    return process_request


def _checked(connection: ServerConnection, realm: str, username: str,
             valid: object) -> Optional[Response]:
    if not valid:
        return _unauthorized(connection, realm, "Invalid credentials\n")
    connection.username = username
    return None


async def _checked_later(connection: ServerConnection, realm: str, username: str,
                         pending: Awaitable[bool]) -> Optional[Response]:
    return _checked(connection, realm, username, await pending)


def _unauthorized(connection: ServerConnection, realm: str, text: str) -> Response:
    response = connection.respond(http.HTTPStatus.UNAUTHORIZED, text)
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    response.headers["WWW-Authenticate"] = f'Basic realm="{quoted}", charset="UTF-8"'
    return response

