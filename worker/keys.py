"""The Worker's signing key: ``SESSION_SECRET`` if set, else one made once and kept.

Session ids are signed so the Worker can refuse an id it never issued by itself, without
addressing (and so creating) a Durable Object for it. Without a configured secret, a
random key is made on first use and kept in one Durable Object of the ``SESSIONS``
namespace, under a name no session id can have (ids are signed, and this name is not);
each isolate fetches it once. Setting ``SESSION_SECRET`` saves that one hop per isolate
and lets you rotate the key.
"""

from __future__ import annotations

import secrets

import internal

#: The Durable Object that keeps the generated key.
KEY_OBJECT = "__signing-key__"
#: A request to that object for the key.
HEADER = "x-mcp-actors-key"

_cache: dict[str, str] = {}


async def signing_key(env, configured: str) -> str:
    if configured:
        return configured
    key = _cache.get("key")
    if key is None:
        response = await internal.call(env.SESSIONS, KEY_OBJECT, {HEADER: "1"})
        key = _cache["key"] = await response.text()
    return key


def stored_key(storage) -> str:
    """Inside the key's Durable Object: the key, made and stored on the first call (the
    object's input gate serializes concurrent first calls)."""
    raw = storage.get("signing-key")
    if raw is None:
        raw = secrets.token_urlsafe(32).encode()
        storage.put("signing-key", raw)
    return raw.decode()
