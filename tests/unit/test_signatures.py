"""The public methods keep signatures that inspect (and so IDEs and
documentation tools) can read, with the parameters and defaults of the API
reference. Per-frame methods are plain method descriptors for speed, whose
signature comes from the embedded text signature, not from a cyfunction."""
from __future__ import annotations

import inspect

import pytest

from picows import WSCloseCode, WSFrame, WSTransport


def params(fn) -> list[tuple[str, object, str]]:
    return [(p.name, p.default, p.kind.name)
            for p in inspect.signature(fn).parameters.values() if p.name != "self"]


E = inspect.Parameter.empty


def test_send():
    assert params(WSTransport.send) == [
        ("msg_type", E, "POSITIONAL_OR_KEYWORD"),
        ("message", None, "POSITIONAL_OR_KEYWORD"),
        ("rsv1", False, "POSITIONAL_OR_KEYWORD"),
        ("fin", True, "KEYWORD_ONLY"),
        ("compress", True, "KEYWORD_ONLY"),
    ]


def test_send_reuse_external_bytearray():
    assert params(WSTransport.send_reuse_external_bytearray) == [
        ("msg_type", E, "POSITIONAL_OR_KEYWORD"),
        ("buffer", E, "POSITIONAL_OR_KEYWORD"),
        ("msg_offset", E, "POSITIONAL_OR_KEYWORD"),
        ("fin", True, "POSITIONAL_OR_KEYWORD"),
        ("rsv1", False, "POSITIONAL_OR_KEYWORD"),
        ("compress", True, "KEYWORD_ONLY"),
    ]


@pytest.mark.parametrize("name", ["send_ping", "send_pong"])
def test_ping_pong(name):
    assert params(getattr(WSTransport, name)) == [("message", None, "POSITIONAL_OR_KEYWORD")]


def test_send_close_and_disconnect():
    assert params(WSTransport.send_close) == [
        ("close_code", WSCloseCode.NO_INFO, "POSITIONAL_OR_KEYWORD"),
        ("close_message", None, "POSITIONAL_OR_KEYWORD"),
    ]
    assert params(WSTransport.disconnect) == [("graceful", True, "POSITIONAL_OR_KEYWORD")]


@pytest.mark.parametrize("name", [
    "get_payload_as_bytes", "get_payload_as_utf8_text", "get_payload_as_ascii_text",
    "get_payload_as_memoryview", "get_close_code", "get_close_message"])
def test_frame_getters(name):
    method = getattr(WSFrame, name)
    assert params(method) == []
    assert method.__doc__ and method.__doc__.strip()


def test_docstrings_kept():
    assert WSTransport.send.__doc__.startswith("Send a frame")
    assert "msg_type" in WSTransport.send.__doc__
