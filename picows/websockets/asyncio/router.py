"""route() and Router: serve with a werkzeug URL map, as websockets.asyncio.router."""
from __future__ import annotations

import http
import urllib.parse
from typing import Any, Awaitable, Optional, Union

from ..http11 import Request, Response
from .server import ServerConnection, serve, unix_serve

__all__ = ["route", "unix_route", "Router"]


class Router:
    """Dispatches connections to the handlers of a ``werkzeug.routing.Map``
    (``Rule(path, endpoint=handler)``); every rule matches WebSocket
    requests (``websocket=True`` is set on each).

    Subclass it and pass ``create_router=`` to :func:`route` to customize.
    """

    def __init__(self, url_map: Any, server_name: Optional[str] = None,
                 url_scheme: str = "ws") -> None:
        self.url_map = url_map
        self.server_name = server_name
        self.url_scheme = url_scheme
        for rule in url_map.iter_rules():
            rule.websocket = True

    def get_server_name(self, connection: ServerConnection, request: Request) -> str:
        if self.server_name is not None:
            return self.server_name
        return request.headers.get("Host") or ""

    def route_request(self, connection: ServerConnection,
                      request: Request) -> Optional[Response]:
        """Match the request: None (and the endpoint kept on the connection),
        or the 404 / redirect response."""
        from werkzeug.exceptions import HTTPException
        from werkzeug.routing import RequestRedirect

        adapter = self.url_map.bind(self.get_server_name(connection, request),
                                    url_scheme=self.url_scheme)
        path, _, query = request.path.partition("?")
        try:
            endpoint, values = adapter.match(urllib.parse.unquote(path), query_args=query)
        except RequestRedirect as redirect:
            response = connection.respond(redirect.code, f"Moved to {redirect.new_url}\n")
            response.headers["Location"] = redirect.new_url
            return response
        except HTTPException as exc:
            status = http.HTTPStatus(exc.code or 500)
            return connection.respond(status, f"{status.phrase}.\n")
        connection._route = (endpoint, values)  # type: ignore[attr-defined]
        return None

    async def handler(self, connection: ServerConnection) -> None:
        endpoint, values = connection._route  # type: ignore[attr-defined]
        await endpoint(connection, **values)


def _routed(url_map: Any, server_name: Optional[str], ssl: Any, create_router: Any,
            kwargs: Any) -> Router:
    router = (create_router or Router)(url_map, server_name,
                                       "wss" if ssl is not None else "ws")
    user_process_request = kwargs.pop("process_request", None)

    def process_request(connection: ServerConnection, request: Request
                        ) -> Union[Optional[Response], Awaitable[Optional[Response]]]:
        response = router.route_request(connection, request)
        if response is None and user_process_request is not None:
            # A coroutine function's awaitable too: serve() awaits it.
            result: Union[Optional[Response], Awaitable[Optional[Response]]] = \
                user_process_request(connection, request)
            return result
        return response

    kwargs["process_request"] = process_request
    if ssl is not None and ssl is not True:
        kwargs["ssl"] = ssl  # True: wss:// redirects only, a proxy terminates TLS
    return router


def route(url_map: Any, *args: Any, server_name: Optional[str] = None,
          ssl: Any = None, create_router: Any = None, **kwargs: Any) -> serve:
    """Serve several handlers, chosen by the request path with a
    ``werkzeug.routing.Map`` of ``Rule(path, endpoint=handler)``.

    The handler is called as ``handler(connection, **values)`` with the
    values the rule matched. Unknown paths get 404, redirects 301/308 with
    ``Location``. Other arguments are those of :class:`serve`; a
    ``process_request`` given runs after the routing. `server_name`: the
    host for redirects (default: the Host header); ``ssl=True``: ``wss://``
    redirects without TLS here (a proxy terminates it); `create_router`: a
    :class:`Router` subclass.
    """
    router = _routed(url_map, server_name, ssl, create_router, kwargs)
    return serve(router.handler, *args, **kwargs)


def unix_route(url_map: Any, path: Optional[str] = None, **kwargs: Any) -> serve:
    """:func:`route` on a Unix socket."""
    router = _routed(url_map, kwargs.pop("server_name", None), kwargs.pop("ssl", None),
                     kwargs.pop("create_router", None), kwargs)
    return unix_serve(router.handler, path, **kwargs)
