"""What ``connect`` and ``serve`` share: the checks of the negotiation
options and the options they hand to each connection they create."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ...compression import WSCompression
from .connection import LoggerLike

__all__ = ["ConnectionOptions", "MaxSize", "WriteLimit", "checked_subprotocols",
           "client_compression", "server_compression"]

# compression="deflate" means websockets' own defaults (chosen there to bound
# memory): memLevel 5 on both sides; the server asks for 12-bit windows both
# ways. The level is picows' (1, see docs/compression.md).
CLIENT_DEFLATE = WSCompression(mem_level=5)
SERVER_DEFLATE = WSCompression(mem_level=5, server_max_window_bits=12,
                               client_max_window_bits=12)


def client_compression(compression: Union[str, WSCompression, None]) -> Any:
    """The core's enable_compression for ``connect(compression=...)``."""
    if isinstance(compression, WSCompression):
        return compression
    return CLIENT_DEFLATE if compression == "deflate" else False


def server_compression(compression: Union[str, WSCompression, None]) -> Any:
    """The core's enable_compression for ``serve(compression=...)``."""
    if isinstance(compression, WSCompression):
        return compression
    return SERVER_DEFLATE if compression == "deflate" else False

#: ``max_size`` / ``max_queue``: a limit, None for none, or ``(high, low)``.
MaxSize = Union[int, None, Tuple[Optional[int], Optional[int]]]
#: ``write_limit``: the high-water mark, or ``(high, low)``.
WriteLimit = Union[int, Tuple[int, Optional[int]]]


def checked_subprotocols(compression: Union[str, WSCompression, None],
                         extensions: Optional[Sequence[Any]],
                         subprotocols: Optional[Sequence[str]]) -> Optional[List[str]]:
    """Refuse what picows.websockets does not negotiate; return the
    subprotocols as a list (None for none)."""
    if compression not in ("deflate", None) and not isinstance(compression, WSCompression):
        raise ValueError(f"unsupported compression: {compression}")
    if extensions:
        raise NotImplementedError("picows.websockets supports permessage-deflate "
                                  "(compression='deflate') only, not custom extensions")
    if isinstance(subprotocols, str):
        raise TypeError("subprotocols must be a list, not a str")
    return list(subprotocols) if subprotocols else None


class ConnectionOptions:
    """The options that ``connect`` and ``serve`` keep for the connections
    they create."""

    ping_interval: Optional[float]
    ping_timeout: Optional[float]
    close_timeout: Optional[float]
    max_size: MaxSize
    max_queue: MaxSize
    write_limit: WriteLimit
    logger: LoggerLike

    def _keep_connection_options(self, ping_interval: Optional[float],
                                 ping_timeout: Optional[float],
                                 close_timeout: Optional[float], max_size: MaxSize,
                                 max_queue: MaxSize, write_limit: WriteLimit,
                                 logger: LoggerLike) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_size = max_size
        self.max_queue = max_queue
        self.write_limit = write_limit
        self.logger = logger

    def _connection_options(self) -> Dict[str, Any]:
        """The keyword arguments of each new connection."""
        return dict(ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
                    close_timeout=self.close_timeout, max_queue=self.max_queue,
                    write_limit=self.write_limit, max_size=self.max_size, logger=self.logger)
