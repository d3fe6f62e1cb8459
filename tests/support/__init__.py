"""What the tests and the fuzz targets share, once each.

- ``wire``: RFC 6455 frames and handshake heads, written from the RFC and
  independent of picows (encoder, mask, decoder, close payload, accept key).
- ``transport``: ``FakeTransport``, ``feed``, ``flush``: a protocol without sockets.
- ``listeners``: ``RecordingListener`` / ``EchoListener``, ``copy_frame``.
- ``protocol``: ``new_protocol``, the one place that constructs
  ``picows.picows.WSProtocol``; ``start_protocol``, ``open_conn`` / ``Conn``.
- ``loopback``: a picows server and client over TCP or TLS, a raw peer.
- ``payloads``: ``pattern``, ``text_payload``: reproducible payloads.
- ``certs``: TLS contexts with a trustme certificate (trustme imported lazily).
- ``messages``: ``producer``, ``Gathering``: server handlers for the
  websockets-compatible layer's tests.
- ``processes``: ``stop_process``: terminate, then kill, a helper process.

Everything is re-exported here: ``from tests.support import build_frame``.
The repository root must be importable (tests/conftest.py and
fuzz/_harness.py append it to ``sys.path``).
"""
from __future__ import annotations

from .certs import TLSContexts, tls_contexts
from .listeners import DATA_TYPES, TIMEOUT, EchoListener, Frame, RecordingListener, copy_frame
from .loopback import (
    Net,
    ServerHandle,
    check_elapsed,
    close_writer,
    connect,
    raw_accept,
    raw_handshake,
    raw_server,
    raise_nofile,
    read_until_eof,
    serve,
    wait_for,
)
from .messages import Gathering, producer
from .payloads import pattern, text_payload
from .processes import stop_process
from .protocol import WAIT, Conn, new_protocol, open_conn, start_protocol
from .transport import FakeTransport, feed, flush
from .wire import (
    BINARY,
    CLIENT_KEY,
    CLOSE,
    CONT,
    PING,
    PONG,
    RFC_GUID,
    RSV1,
    RSV2,
    RSV3,
    SERVER_KEY,
    TEXT,
    WireFrame,
    apply_mask,
    build_frame,
    build_header,
    client_frame,
    client_upgrade,
    close_payload,
    decode_frames,
    expected_accept,
    head_headers,
    new_key,
    next_mask,
    read_frame,
    server_frame,
    switching_response,
    upgrade_request,
)

__all__ = [
    "BINARY", "CLIENT_KEY", "CLOSE", "CONT", "DATA_TYPES", "PING", "PONG", "RFC_GUID",
    "RSV1", "RSV2", "RSV3", "SERVER_KEY", "TEXT", "TIMEOUT", "WAIT",
    "Conn", "EchoListener", "FakeTransport", "Frame", "Gathering", "Net", "RecordingListener",
    "ServerHandle", "TLSContexts", "WireFrame", "check_elapsed", "raise_nofile",
    "read_until_eof",
    "apply_mask", "build_frame", "build_header", "client_frame", "client_upgrade",
    "close_payload", "close_writer", "connect", "copy_frame", "decode_frames",
    "expected_accept", "feed", "flush", "head_headers", "new_key", "new_protocol",
    "next_mask", "open_conn", "pattern", "producer", "raw_accept", "raw_handshake", "raw_server",
    "read_frame", "serve", "server_frame", "start_protocol", "stop_process",
    "switching_response", "text_payload",
    "tls_contexts", "upgrade_request", "wait_for",
]
