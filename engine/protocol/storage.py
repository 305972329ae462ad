"""The storage contract actors persist through, modelled on Durable Object storage.

An actor gets one :class:`Storage` namespace. Writes are synchronous calls (like
``ctx.storage.kv`` in a SQLite-backed Durable Object) and ``flush()`` is the output gate:
once it returns, everything written before it is committed, and only then may bytes that
depend on it reach a client. Between two flushes all writes commit together or not at all
(a crash loses the whole group), so a flush is also the natural transaction boundary;
``transaction(fn)`` runs ``fn`` so that its writes all happen or (if it raises) none do,
like a Durable Object's ``transactionSync``.

Each namespace has one alarm, a wall-clock time (``time.time()`` seconds). The runtime
calls the actor's ``alarm()`` at or after that time, at least once, and retries it with
backoff if it raises, as Durable Objects do.

Keys are strings compared bytewise; callers zero-pad numbers so that key order is
numeric order and ``list(prefix)`` returns a stream's events in sequence.
"""

from __future__ import annotations

from typing import Callable, Protocol, TypeVar

T = TypeVar("T")

#: The namespace a store's readiness probe writes in (and leaves empty): never an actor's.
PROBE_NAMESPACE = "__probe__"


class StoreUnavailable(Exception):
    """``flush()`` could not commit its group (disk full, an I/O error): none of the
    group's writes were kept. The actors that wrote in it must not trust what they hold in
    memory; they are replaced by fresh ones woken from what storage did keep. The store
    itself carries on: the next group commits once the cause is gone."""


class Storage(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str, after: str | None = None) -> list[tuple[str, bytes]]:
        """``(key, value)`` pairs under ``prefix`` in key order, strictly after ``after``."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...

    def transaction(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; its writes all happen, or (if it raises) none do."""
        ...

    async def flush(self) -> None:
        """Durability barrier: returns once every earlier write is committed, or raises
        :class:`StoreUnavailable` if they could not be (then none of that group was)."""
        ...

    def set_alarm(self, at: float) -> None: ...

    def get_alarm(self) -> float | None: ...

    def delete_alarm(self) -> None: ...


def key_range(prefix: str, after: str | None = None) -> tuple[str, tuple[str, ...]]:
    """A SQL condition on ``key`` (and its arguments) for ``list(prefix, after)``: keys
    starting with ``prefix``, strictly after ``after``. Shared by the SQL backends."""
    low = max(prefix, after) if after is not None else prefix
    op = ">" if after is not None and after >= prefix else ">="
    if not prefix:
        return f"key {op} ?", (low,)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the least string above every key with the prefix
    return f"key {op} ? AND key < ?", (low, upper)


class Backend(Protocol):
    def namespace(self, name: str) -> Storage: ...

    def exists(self, name: str, key: str) -> bool:
        """Whether namespace ``name`` holds ``key``, without loading anything else."""
        ...

    def count(self, key: str) -> int:
        """How many namespaces hold ``key`` (how many sessions exist: ``meta``)."""
        ...

    def drop(self, name: str) -> None:
        """Delete everything a namespace holds, alarm included."""
        ...

    def due_alarms(self, now: float) -> list[tuple[str, float]]:
        """``(name, at)`` of every alarm at or before ``now``."""
        ...

    def next_alarm(self) -> float | None: ...

    #: Why the last commit failed (a full disk, the database away), or None once one
    #: succeeds again: while set, the process is not ready for traffic (``/readyz`` 503).
    commit_failure: str | None

    #: Told of each group the backend ends (seconds its commit took, or None if the group
    #: failed before a commit was sent; the failure's type name, or None; the writes in it:
    #: keys put or deleted, alarms set): the metrics set it. A backend that commits nothing
    #: (memory) never calls it.
    on_commit: Callable[[float | None, str | None, int], None] | None

    async def probe(self) -> None:
        """While ``commit_failure`` is set, try a small real commit (on no one's behalf),
        clearing it if that succeeds: an unready process gets no traffic, so without this
        nothing would commit and it would never be ready again."""
        ...

    def close(self) -> None: ...
