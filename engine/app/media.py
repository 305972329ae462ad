"""Tiny valid media files made in code, for demos and tests (no binary files in the repo)."""

from __future__ import annotations

import io
import struct
import wave
import zlib


def png_pixel(rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A 1x1 PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def wav_silence(milliseconds: int = 10, rate: int = 8000) -> bytes:
    """A short mono 8-bit WAV of silence."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(b"\x80" * (rate * milliseconds // 1000))
    return buf.getvalue()
