"""``requestState`` of input-required round trips (2026-07-28 basic/patterns/mrtr).

How the engine resumes a handler: a handler that asks the client something
(``ctx.elicit``, ``ctx.sample``, ``ctx.list_roots``) in the stateless era ends its round
with an ``input_required`` result; the client answers and calls again, and the handler
runs again from the start, this time finding its answers. The answers of earlier rounds
travel in ``requestState``, so any replica can serve any round and a restart loses
nothing: there is no server-side state to keep.

The client must not be able to forge or move that state, so it is sealed: HMAC-SHA256
under a key every replica shares, over a payload that binds it to the method, the tool,
prompt or resource, a digest of its arguments and the caller, and that expires. Anything
else (altered, expired, or replayed against another request) is refused. The answers
inside are the client's own, so integrity is what matters, not secrecy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import msgspec

#: Seconds a sealed state stays valid: long enough for a person to answer a form.
DEFAULT_TTL = 15 * 60.0


class StateError(ValueError):
    """The state is not one this server sealed for this request, or it expired."""


class _Sealed(msgspec.Struct, array_like=True):
    version: int
    expires: float
    binding: str
    nonce: str
    answers: dict


_encode = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder(_Sealed).decode


def derive(master: bytes | str, purpose: str) -> bytes:
    """A key for one purpose from the server's secret, so no two uses share a key."""
    if isinstance(master, str):
        master = master.encode()
    return hmac.new(master, purpose.encode(), hashlib.sha256).digest()


def binding(method: str, target: Any, arguments: Any, principal: str = "") -> str:
    """What a state is bound to: the method, its tool/prompt/resource, its arguments
    (canonical JSON) and the caller."""
    digest = hashlib.sha256()
    for part in (method.encode(), _encode(target), _encode(arguments), principal.encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, answers: dict, bound_to: str, now: float, ttl: float = DEFAULT_TTL) -> str:
    payload = _encode(_Sealed(1, now + ttl, bound_to, _b64(os.urandom(9)), answers))
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def open_state(key: bytes, token: Any, bound_to: str, now: float) -> dict:
    """The answers a sealed state carries; StateError saying why it is refused."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 4 * 1024 * 1024:
        raise StateError("requestState is not one this server issued")
    body, _, mac = token.partition(".")
    try:
        payload, tag = _unb64(body), _unb64(mac)
    except (ValueError, TypeError):
        raise StateError("requestState is not one this server issued") from None
    if not hmac.compare_digest(tag, hmac.new(key, payload, hashlib.sha256).digest()):
        raise StateError("requestState was altered or was not issued by this server")
    try:
        sealed = _decode(payload)
    except msgspec.DecodeError:
        raise StateError("requestState is not one this server issued") from None
    if sealed.version != 1:
        raise StateError("requestState is of an unknown version")
    if sealed.expires < now:
        raise StateError("requestState expired; call again without it")
    if not hmac.compare_digest(sealed.binding, bound_to):
        raise StateError("requestState was issued for another request (method, name, arguments or caller)")
    return sealed.answers
