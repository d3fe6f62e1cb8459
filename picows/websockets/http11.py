"""The upgrade request and response, as websockets.http11 names them."""
from __future__ import annotations

import dataclasses
from typing import Optional

from .datastructures import Headers

__all__ = ["Request", "Response"]


@dataclasses.dataclass
class Request:
    """The client's upgrade request: ``path`` (with the query) and ``headers``."""
    path: str
    headers: Headers
    _exception: Optional[Exception] = None

    @property
    def exception(self) -> Optional[Exception]:
        return self._exception


@dataclasses.dataclass
class Response:
    """The server's response: status, reason phrase, headers and body."""
    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""
    _exception: Optional[Exception] = None

    @property
    def exception(self) -> Optional[Exception]:
        return self._exception
