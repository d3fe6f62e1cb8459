"""picows: fast and strict WebSocket client and server for Python asyncio."""

__version__ = "1.0.0"

from .types import (  # noqa: E402
    WSCloseHandshake,
    WSCloseInfo,
    WSError,
    WSHandshakeError,
    WSInvalidHeaderError,
    WSInvalidMessageError,
    WSInvalidStatusError,
    WSInvalidUpgradeError,
    WSInvalidURL,
    WSProtocolError,
    WSProxyError,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from .picows import (  # noqa: E402
    broadcast,
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)
from .api import ws_close_server, ws_connect, ws_create_server, ws_server_connections  # noqa: E402,E501
from .compression import WSCompression  # noqa: E402
from .proxy import WSParsedURL  # noqa: E402

__all__ = [
    "__version__",
    "ws_connect",
    "ws_create_server",
    "ws_server_connections",
    "ws_close_server",
    "broadcast",
    "WSListener",
    "WSTransport",
    "WSFrame",
    "WSUpgradeRequest",
    "WSUpgradeResponse",
    "WSUpgradeResponseWithListener",
    "WSCloseHandshake",
    "WSCloseInfo",
    "WSMsgType",
    "WSCloseCode",
    "WSAutoPingStrategy",
    "WSCompression",
    "WSError",
    "WSHandshakeError",
    "WSInvalidMessageError",
    "WSInvalidStatusError",
    "WSInvalidHeaderError",
    "WSInvalidUpgradeError",
    "WSProtocolError",
    "WSInvalidURL",
    "WSProxyError",
    "WSParsedURL",
]
