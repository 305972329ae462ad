"""The engine's storage contract on a SQLite-backed Durable Object's ``ctx.storage``.

A thin mapping: keys and values go into one table through the synchronous
``ctx.storage.sql`` API, transactions are ``transactionSync``, and the alarm is the
object's alarm. The Durable Object's output gate already holds a response until the
writes it depends on are durable; ``flush()`` additionally waits for the alarm calls
(which return promises) and for ``storage.sync()`` where the runtime offers it, so the
contract's rule (committed before bytes leave) holds for streamed bytes too.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from engine.protocol.storage import StoreUnavailable, key_range

from internal import unwrapped

T = TypeVar("T")

_SCHEMA = "CREATE TABLE IF NOT EXISTS mcp_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"


def _rows(cursor: Any) -> list:
    """A SQL cursor's rows as dicts (a JavaScript array of plain objects, converted once)."""
    rows = cursor.toArray()
    return rows.to_py() if hasattr(rows, "to_py") else list(rows)


def _bytes(value: Any) -> bytes:
    """A BLOB as Python bytes, whether it arrives as a memoryview, bytes or a JS proxy."""
    if hasattr(value, "to_py"):
        value = value.to_py()
    return bytes(value)


class DurableObjectStorage:
    """One Durable Object's storage as an ``engine.protocol.storage.Storage``."""

    def __init__(self, storage: Any, to_js: Any, proxy: Any):
        """``to_js``/``proxy``: pyodide.ffi's, passed in so this module imports off Pyodide too."""
        # The runtime's storage, not the Workers SDK's wrapper, whose RPC conversions walked
        # every argument (internal.unwrapped); rows read are converted here (_rows).
        self.storage = storage = unwrapped(storage)
        self.sql = storage.sql
        self._to_js = to_js
        self._proxy = proxy
        self._pending: list[Any] = []  # promises to settle before output
        # The table is made by the first write, not here: a request for a session id that
        # was never issued reads, finds nothing and answers 404, leaving no storage behind.
        self._table: bool | None = None
        self._alarm: float | None = None  # mirrored by load_alarm(): the contract reads it synchronously

    def _has_table(self) -> bool:
        if self._table is None:
            rows = _rows(self.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mcp_kv'"))
            self._table = len(rows) > 0
        return self._table

    def _make_table(self) -> None:
        if not self._has_table():
            self.sql.exec(_SCHEMA)
            self._table = True

    async def load_alarm(self) -> None:
        at = await self.storage.getAlarm()
        self._alarm = float(at) / 1000.0 if isinstance(at, (int, float)) else None  # null: no alarm

    # -- keys --------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        if not self._has_table():
            return None
        rows = _rows(self.sql.exec("SELECT value FROM mcp_kv WHERE key = ?", key))
        return _bytes(rows[0]["value"]) if len(rows) else None

    def put(self, key: str, value: bytes) -> None:
        self._make_table()
        self.sql.exec("INSERT OR REPLACE INTO mcp_kv VALUES (?, ?)", key, self._to_js(value))

    def delete(self, key: str) -> None:
        if not self._has_table():
            return
        self.sql.exec("DELETE FROM mcp_kv WHERE key = ?", key)

    def list(self, prefix: str, after: str | None = None) -> list[tuple[str, bytes]]:
        if not self._has_table():
            return []
        where, args = key_range(prefix, after)
        cursor = self.sql.exec(f"SELECT key, value FROM mcp_kv WHERE {where} ORDER BY key", *args)
        return [(row["key"], _bytes(row["value"])) for row in _rows(cursor)]

    def delete_prefix(self, prefix: str) -> None:
        if not self._has_table():
            return
        where, args = key_range(prefix)
        self.sql.exec(f"DELETE FROM mcp_kv WHERE {where}", *args)

    def transaction(self, fn: Callable[[], T]) -> T:
        self._make_table()  # outside: a rolled-back transaction would take the table with it
        return self.storage.transactionSync(self._proxy(fn))

    # -- durability --------------------------------------------------------------------------

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            for promise in pending:
                await promise
            sync = getattr(self.storage, "sync", None)
            if sync is not None:
                await sync()
        except Exception as exc:  # a JsException from the storage layer
            raise StoreUnavailable(f"the Durable Object's storage could not commit: {exc}") from None

    # -- alarm -------------------------------------------------------------------------------

    def set_alarm(self, at: float) -> None:
        self._alarm = at
        self._pending.append(self.storage.setAlarm(at * 1000.0))

    def get_alarm(self) -> float | None:
        return self._alarm

    def delete_alarm(self) -> None:
        self._alarm = None
        self._pending.append(self.storage.deleteAlarm())
