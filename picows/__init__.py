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
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)
from .api import ws_connect, ws_create_server  # noqa: E402
from .proxy import WSParsedURL  # noqa: E402

__all__ = [
    "__version__",
    "ws_connect",
    "ws_create_server",
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
