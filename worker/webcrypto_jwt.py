"""PyJWT's signature algorithms on WebCrypto, for the Workers runtime.

PyJWT is pure Python, but verifies RS256, ES256 and EdDSA with ``cryptography``, which has
no build for Cloudflare's Python runtime. ``crypto.subtle`` verifies all three natively, so
this module registers verify-only PyJWT algorithms backed by it: PyJWT still does
everything else (the header, the algorithm allow-list, ``crit``, the claims), the same
code as locally (:class:`engine.actors.auth.JwtVerifier`). WebCrypto is asynchronous;
PyJWT's ``verify`` is not, so the call is made synchronous with ``pyodide.ffi.run_sync``
(JSPI). Keys are imported once per JWK and reused. The algorithm a key may verify is the
one it was made for (``alg_for``): an RSA modulus never becomes an HMAC secret.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
from jwt.algorithms import Algorithm, has_crypto
from jwt.exceptions import InvalidKeyError

from engine.actors.auth import ALGORITHMS, InvalidToken, alg_for

#: WebCrypto's names for each algorithm: (key import, verify).
_WEBCRYPTO = {
    "RS256": ({"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}, {"name": "RSASSA-PKCS1-v1_5"}),
    "ES256": ({"name": "ECDSA", "namedCurve": "P-256"}, {"name": "ECDSA", "hash": "SHA-256"}),
    "EdDSA": ({"name": "Ed25519"}, {"name": "Ed25519"}),
}
_PUBLIC = ("kty", "crv", "n", "e", "x", "y")


class WebCryptoAlgorithm(Algorithm):
    """Verify-only: a Worker checks tokens, it never signs them."""

    def __init__(self, alg: str):
        self.alg = alg
        self._imported: dict[str, Any] = {}

    def prepare_key(self, key: Any) -> dict:
        if not isinstance(key, dict):
            raise InvalidKeyError(f"{self.alg} takes a JWK")
        try:
            if alg_for(key) != self.alg:
                raise InvalidKeyError(f"the key does not verify {self.alg}")
        except InvalidToken as exc:
            raise InvalidKeyError(str(exc)) from None
        return {name: key[name] for name in _PUBLIC if name in key}

    def check_key_length(self, key: Any) -> None:  # WebCrypto refuses malformed keys itself
        return None

    def sign(self, msg: bytes, key: Any) -> bytes:
        raise NotImplementedError("verify-only")

    def verify(self, msg: bytes, key: dict, sig: bytes) -> bool:
        from pyodide.ffi import run_sync

        return bool(run_sync(self._verify(msg, key, sig)))

    async def _verify(self, msg: bytes, key: dict, sig: bytes) -> bool:
        from js import Object, Uint8Array, crypto
        from pyodide.ffi import to_js

        def js(value: Any) -> Any:
            return to_js(value, dict_converter=Object.fromEntries)

        imported, params = _WEBCRYPTO[self.alg]
        cache_key = json.dumps(key, sort_keys=True)
        crypto_key = self._imported.get(cache_key)
        if crypto_key is None:
            crypto_key = await crypto.subtle.importKey("jwk", js(key), js(imported), False, to_js(["verify"]))
            if len(self._imported) > 64:
                self._imported.clear()
            self._imported[cache_key] = crypto_key
        signature, message = Uint8Array.new(len(sig)), Uint8Array.new(len(msg))
        signature.assign(sig)
        message.assign(msg)
        return await crypto.subtle.verify(js(params), crypto_key, signature, message)

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
        raise NotImplementedError

    @staticmethod
    def from_jwk(jwk: Any) -> dict:
        return json.loads(jwk) if isinstance(jwk, str) else jwk


def install() -> None:
    """Register the algorithms with PyJWT, where ``cryptography`` is missing (once)."""
    if has_crypto:
        return
    for alg in ALGORITHMS:
        try:
            jwt.register_algorithm(alg, WebCryptoAlgorithm(alg))
        except ValueError:  # registered already (by an earlier request of this isolate)
            pass
