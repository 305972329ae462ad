"""The in-memory storage backend: every actor's namespace in a dict, lost on exit.

The default for ``engine.asgi_app`` and tests; ``--store memory`` on the command line. It
keeps the contract of :mod:`engine.protocol.storage` (transactions by an undo log, one
alarm per namespace), so code tested on it behaves the same on SQLite and in a Durable
Object.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


class MemoryStorage:
    """One namespace of :class:`MemoryBackend`: a dict. Gone when the process exits."""

    __slots__ = ("data", "backend", "name", "_undo")

    def __init__(self, backend: "MemoryBackend", name: str) -> None:
        self.data: dict[str, bytes] = {}
        self.backend = backend
        self.name = name
        self._undo: list[tuple[str, bytes | None]] | None = None

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        if self._undo is not None:
            self._undo.append((key, self.data.get(key)))
        self.data[key] = value

    def delete(self, key: str) -> None:
        old = self.data.pop(key, None)
        if self._undo is not None and old is not None:
            self._undo.append((key, old))

    def list(self, prefix: str, after: str | None = None) -> list[tuple[str, bytes]]:
        keys = sorted(k for k in self.data if k.startswith(prefix) and (after is None or k > after))
        return [(k, self.data[k]) for k in keys]

    def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.data if k.startswith(prefix)]:
            self.delete(key)

    def transaction(self, fn: Callable[[], T]) -> T:
        outer = self._undo
        self._undo = []
        try:
            result = fn()
        except BaseException:
            for key, old in reversed(self._undo):
                if old is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = old
            self._undo = outer
            raise
        if outer is not None:
            outer.extend(self._undo)
        self._undo = outer
        return result

    async def flush(self) -> None:
        return None

    def set_alarm(self, at: float) -> None:
        self.backend.alarms[self.name] = at

    def get_alarm(self) -> float | None:
        return self.backend.alarms.get(self.name)

    def delete_alarm(self) -> None:
        self.backend.alarms.pop(self.name, None)


class MemoryBackend:
    """Process-local storage for every actor: fast, and lost on exit."""

    def __init__(self) -> None:
        self.spaces: dict[str, MemoryStorage] = {}
        self.alarms: dict[str, float] = {}
        self.commit_failure: str | None = None  # memory always commits
        self.on_commit = None

    async def probe(self) -> None:
        return None

    def namespace(self, name: str) -> MemoryStorage:
        space = self.spaces.get(name)
        if space is None:
            space = self.spaces[name] = MemoryStorage(self, name)
        return space

    def exists(self, name: str, key: str) -> bool:
        space = self.spaces.get(name)
        return space is not None and key in space.data

    def count(self, key: str) -> int:
        return sum(1 for space in self.spaces.values() if key in space.data)

    def drop(self, name: str) -> None:
        self.spaces.pop(name, None)
        self.alarms.pop(name, None)

    def due_alarms(self, now: float) -> list[tuple[str, float]]:
        return sorted(((n, at) for n, at in self.alarms.items() if at <= now), key=lambda item: item[1])

    def next_alarm(self) -> float | None:
        return min(self.alarms.values(), default=None)

    def close(self) -> None:
        return None
