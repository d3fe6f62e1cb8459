"""The one place where the server's HTTP response meets picows' core.

``serve`` decides the response to an upgrade request as websockets does
(origins, ``process_request``, subprotocol, ``process_response``) and hands
it here, as a :class:`~picows.websockets.http11.Response`. This module turns
it into what the listener factory of ``ws_create_server`` returns.

With the core's upgrade control (``WSUpgradeResponse`` /
``WSUpgradeResponseWithListener``, "Upgrade control" in the 2.3 API notes)
every response goes out as decided: a 101 with its extra headers
(``Sec-WebSocket-Protocol``, ``Set-Cookie``...), or any other status with its
body. Without it (the core of this branch), a 101 goes out without extra
headers (so no subprotocol is agreed) and any other response becomes the
core's 404.
"""
from __future__ import annotations

from typing import Any, FrozenSet, List, Optional, Tuple

from ... import picows as _core_module
from ... import types as _types
from ..http11 import Response

__all__ = ["HAVE_UPGRADE_CONTROL", "to_core_response", "CORE_101_HEADERS"]

_WSUpgradeResponse: Any = (getattr(_core_module, "WSUpgradeResponse", None)
                           or getattr(_types, "WSUpgradeResponse", None))
_WSUpgradeResponseWithListener: Any = (
    getattr(_core_module, "WSUpgradeResponseWithListener", None)
    or getattr(_types, "WSUpgradeResponseWithListener", None))

#: Whether the core can send the response the server chose.
HAVE_UPGRADE_CONTROL = (_WSUpgradeResponseWithListener is not None
                        and hasattr(_WSUpgradeResponse, "create_101_response"))

#: Headers of a 101 that the core writes itself.
CORE_101_HEADERS = frozenset({"upgrade", "connection", "sec-websocket-accept",
                              "sec-websocket-extensions"})


def _extra_headers(response: Response,
                   skip: FrozenSet[str] = frozenset()) -> List[Tuple[str, str]]:
    return [(name, value) for name, value in response.headers.raw_items()
            if name.lower() not in skip]


def to_core_response(response: Response, listener: Any) -> Any:
    """What the listener factory returns for `response`: the listener, a
    ``WSUpgradeResponseWithListener``, or None (404)."""
    status = response.status_code
    if not HAVE_UPGRADE_CONTROL:
        return listener if status == 101 else None
    if status == 101:
        core = _WSUpgradeResponse.create_101_response(
            extra_headers=_extra_headers(response, CORE_101_HEADERS))
        return _WSUpgradeResponseWithListener(core, listener)
    skip = frozenset({"content-length", "connection"})
    body: Optional[bytes] = response.body or None
    if 300 <= status < 400 and "Location" in response.headers:
        core = _WSUpgradeResponse.create_redirect_response(
            status, response.headers["Location"],
            extra_headers=_extra_headers(response, skip | {"location"}))
    elif status == 200:
        core = _WSUpgradeResponse.create_ok_response(
            body, extra_headers=_extra_headers(response, skip))
    else:
        core = _WSUpgradeResponse.create_error_response(
            status if status >= 400 else 500, body,
            extra_headers=_extra_headers(response, skip))
    return _WSUpgradeResponseWithListener(core, None)
