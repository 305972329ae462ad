"""A shim (see pyodide_shims/README.md): HKDF (RFC 5869) on hashlib and hmac."""

from __future__ import annotations

import hashlib
import hmac


class HKDF:
    def __init__(self, algorithm, length: int, salt: bytes | None, info: bytes | None, backend=None):
        self._hash = getattr(hashlib, algorithm.name)
        self._length = length
        self._salt = salt
        self._info = info or b""

    def derive(self, key_material: bytes) -> bytes:
        size = self._hash().digest_size
        prk = hmac.new(self._salt or b"\0" * size, key_material, self._hash).digest()
        out, block, counter = b"", b"", 0
        while len(out) < self._length:
            counter += 1
            block = hmac.new(prk, block + self._info + bytes([counter]), self._hash).digest()
            out += block
        return out[: self._length]
