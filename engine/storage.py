"""The storage contract actors persist through, modelled on Durable Object storage.

Writes are synchronous calls (like ``ctx.storage.kv`` / ``ctx.storage.sql`` in a SQLite
backed Durable Object) and ``flush()`` is the output gate: once it returns, everything
written before it is durable, and only then may the bytes it produced reach a client.
A backend hands out one :class:`Storage` namespace per actor name.

Keys are strings compared bytewise; callers zero-pad numbers so that key order is
numeric order and ``list(prefix)`` returns a stream's events in sequence.
"""

from __future__ import annotations

from typing import Iterator, Protocol


class Storage(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, bytes]]:
        """``(key, value)`` pairs under ``prefix`` in key order, strictly after ``after``."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...

    async def flush(self) -> None:
        """Durability barrier: returns once every earlier write is committed."""
        ...


class Backend(Protocol):
    def namespace(self, name: str) -> Storage: ...

    def drop(self, name: str) -> None:
        """Delete everything an actor stored (its session ended)."""
        ...


class MemoryStorage:
    """Process-local storage: a dict. Durable until the process exits, and no longer."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def list(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, bytes]]:
        keys = sorted(k for k in self.data if k.startswith(prefix) and (after is None or k > after))
        return iter([(k, self.data[k]) for k in keys])

    def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.data if k.startswith(prefix)]:
            del self.data[key]

    async def flush(self) -> None:
        return None


class MemoryBackend:
    def __init__(self) -> None:
        self.spaces: dict[str, MemoryStorage] = {}

    def namespace(self, name: str) -> MemoryStorage:
        space = self.spaces.get(name)
        if space is None:
            space = self.spaces[name] = MemoryStorage()
        return space

    def drop(self, name: str) -> None:
        self.spaces.pop(name, None)
