"""The one place where the server's HTTP response meets picows' core.

``serve`` decides the response to an upgrade request as websockets does
(origins, ``process_request``, subprotocol, ``process_response``) and hands
it here, as a :class:`~picows.websockets.http11.Response`. This module turns
it into what the listener factory of ``ws_create_server`` returns: a
``WSUpgradeResponseWithListener`` with a 101 and its extra headers
(``Sec-WebSocket-Protocol``, ``Set-Cookie``...) and the connection as the
listener, or any other status with its body and no listener.
"""
from __future__ import annotations

from typing import FrozenSet, List, Optional, Tuple

from ...picows import WSListener
from ...types import WSUpgradeResponse, WSUpgradeResponseWithListener
from ..http11 import Response

__all__ = ["to_core_response", "CORE_101_HEADERS"]

#: Headers of a 101 that the core writes itself.
CORE_101_HEADERS = frozenset({"upgrade", "connection", "sec-websocket-accept",
                              "sec-websocket-extensions"})
#: Headers of other responses that the core writes itself.
_CORE_ERROR_HEADERS = frozenset({"content-length", "connection"})


def _extra_headers(response: Response,
                   skip: FrozenSet[str] = frozenset()) -> List[Tuple[str, str]]:
    return [(name, value) for name, value in response.headers.raw_items()
            if name.lower() not in skip]


def to_core_response(response: Response, listener: WSListener) -> WSUpgradeResponseWithListener:
    """The listener factory's answer for `response`; `listener` serves a 101."""
    status = response.status_code
    if status == 101:
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response(
                extra_headers=_extra_headers(response, CORE_101_HEADERS)),
            listener)
    body: Optional[bytes] = response.body or None
    if 300 <= status < 400 and "Location" in response.headers:
        core = WSUpgradeResponse.create_redirect_response(
            status, response.headers["Location"],
            extra_headers=_extra_headers(response, _CORE_ERROR_HEADERS | {"location"}))
    elif status == 200:
        core = WSUpgradeResponse.create_ok_response(
            body, extra_headers=_extra_headers(response, _CORE_ERROR_HEADERS))
    else:
        core = WSUpgradeResponse.create_error_response(
            status if status >= 400 else 500, body,
            extra_headers=_extra_headers(response, _CORE_ERROR_HEADERS))
    return WSUpgradeResponseWithListener(core, None)
