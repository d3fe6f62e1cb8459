"""Payloads of any size, reproducible."""
from __future__ import annotations

import random


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes of a given size."""
    block = bytes((i * 7 + 3) & 0xFF for i in range(251))  # 251: prime, so misalignments show
    return (block * (size // len(block) + 1))[:size]


def text_payload(size: int) -> bytes:
    """ASCII words: valid UTF-8 at any length, compressible but not trivially."""
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta"]
    rnd = random.Random(size)
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])
