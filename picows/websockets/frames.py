"""Close codes and the CLOSE frame value, named as in websockets.frames."""
from __future__ import annotations

import dataclasses
import enum

__all__ = ["Opcode", "CloseCode", "Close", "OK_CLOSE_CODES"]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 5.2)."""
    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """Close codes (RFC 6455 7.4.1), with the names websockets gives them."""
    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


#: Codes for which a closed connection raises ConnectionClosedOK.
OK_CLOSE_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY,
                            CloseCode.NO_STATUS_RCVD})

_EXPLANATIONS = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "abnormal closure [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}


@dataclasses.dataclass
class Close:
    """The code and reason of a CLOSE frame."""
    code: int
    reason: str

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = _EXPLANATIONS.get(self.code, "unknown")
        result = f"{self.code} ({explanation})"
        if self.reason:
            result = f"{result} {self.reason}"
        return result
