"""route(): serve with a werkzeug URL map, as websockets.asyncio.router."""
from __future__ import annotations

import http
import urllib.parse
from typing import Any, Optional

from ..http11 import Request, Response
from .server import ServerConnection, serve

__all__ = ["route"]


def route(url_map: Any, *args: Any, server_name: Optional[str] = None,
          ssl: Any = None, create_router: Any = None, **kwargs: Any) -> serve:
    """Serve several handlers, chosen by the request path with a
    ``werkzeug.routing.Map`` of ``Rule(path, endpoint=handler)``.

    The handler is called as ``handler(connection, **values)`` with the
    values the rule matched. Unknown paths get 404, redirects 301/308 with
    ``Location``. Other arguments are those of :class:`serve`; a
    ``process_request`` given runs after the routing. `server_name`: the
    host for redirects (default: the Host header); ``ssl=True``: ``wss://``
    redirects without TLS here (a proxy terminates it).
    """
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect

    if create_router is not None:
        raise NotImplementedError("create_router is not supported")
    user_process_request = kwargs.pop("process_request", None)
    scheme = "wss" if ssl is not None else "ws"
    # Every rule matches WebSocket requests, as websockets does it.
    for rule in url_map.iter_rules():
        rule.websocket = True

    def process_request(connection: ServerConnection, request: Request) -> Optional[Response]:
        host = server_name or request.headers.get("Host") or ""
        adapter = url_map.bind(host, url_scheme=scheme)
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
        if user_process_request is not None:
            result: Optional[Response] = user_process_request(connection, request)
            return result
        return None

    async def handler(connection: ServerConnection) -> None:
        endpoint, values = connection._route  # type: ignore[attr-defined]
        await endpoint(connection, **values)

    if ssl is not None and ssl is not True:
        kwargs["ssl"] = ssl  # True: wss:// URIs only, a proxy terminates TLS
    return serve(handler, *args, process_request=process_request, **kwargs)
