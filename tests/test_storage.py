"""The storage contract, one suite for every backend (the Durable Object backend joins later)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from engine.actors import storage_contract
from engine.actors.sqlite_store import SqliteBackend, StoreError
from engine.actors.memory_store import MemoryBackend


@pytest.fixture(params=["memory", "sqlite"])
def backend(request, tmp_path):
    b = MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "state.db")
    yield b
    b.close()


@pytest.mark.parametrize("check", list(storage_contract.CHECKS))
def test_storage_contract(backend, check):
    """The namespace-level contract; tests/test_worker.py runs it inside a Durable Object."""
    asyncio.run(storage_contract.run(check, backend.namespace("contract")))


def test_namespaces_are_isolated_and_droppable(backend):
    a, b = backend.namespace("a"), backend.namespace("b")
    a.put("meta", b"A")
    b.put("meta", b"B")
    a.set_alarm(100.0)
    assert backend.exists("a", "meta") and not backend.exists("c", "meta")
    assert b.get("meta") == b"B" and b.list("") == [("meta", b"B")]
    backend.drop("a")
    assert not backend.exists("a", "meta") and backend.namespace("a").get("meta") is None
    assert backend.namespace("a").get_alarm() is None
    assert b.get("meta") == b"B"


def test_alarms_across_namespaces(backend):
    a, b = backend.namespace("a"), backend.namespace("b")
    assert backend.next_alarm() is None
    a.set_alarm(50.0)
    b.set_alarm(20.0)
    a.set_alarm(30.0)
    assert backend.next_alarm() == 20.0
    assert backend.due_alarms(25.0) == [("b", 20.0)]
    assert backend.due_alarms(40.0) == [("b", 20.0), ("a", 30.0)]
    b.delete_alarm()
    assert backend.due_alarms(40.0) == [("a", 30.0)]


def test_sqlite_commits_survive_reopen_and_group_commit(tmp_path):
    path = tmp_path / "state.db"

    async def go():
        b = SqliteBackend(path)
        writers = [b.namespace(f"s{i}") for i in range(20)]
        commits = 0
        real_commit = b.commit

        def counting_commit():
            nonlocal commits
            commits += b._in_tx
            real_commit()

        b.commit = counting_commit
        for i, s in enumerate(writers):
            s.put("meta", b"%d" % i)
        await asyncio.gather(*(s.flush() for s in writers))
        assert commits == 1  # twenty actors, one COMMIT
        # A second connection (another process) sees only committed data.
        other = sqlite3.connect(path)
        assert other.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 20
        writers[0].put("late", b"x")
        assert other.execute("SELECT COUNT(*) FROM kv WHERE key = 'late'").fetchone()[0] == 0
        await writers[0].flush()
        assert other.execute("SELECT COUNT(*) FROM kv WHERE key = 'late'").fetchone()[0] == 1
        other.close()
        b.close()

    asyncio.run(go())
    again = SqliteBackend(path)
    assert again.namespace("s7").get("meta") == b"7"
    again.close()


def test_sqlite_bad_files_are_clear_errors_at_start(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable mcp-actors store"):
        SqliteBackend(garbage)
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="another application"):
        SqliteBackend(foreign)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        SqliteBackend(blocker / "sub" / "state.db")


def test_sqlite_store_serves_one_process_at_a_time(tmp_path):
    first = SqliteBackend(tmp_path / "state.db")
    with pytest.raises(StoreError, match="another mcp-actors server is using"):
        SqliteBackend(tmp_path / "state.db")
    first.close()
    SqliteBackend(tmp_path / "state.db").close()  # free again once the first has closed


def test_sqlite_write_ahead_log_stays_bounded_under_steady_writes(tmp_path, monkeypatch):
    """A writer that never pauses must not grow the log without end: the checkpointer's
    passive checkpoints alone never catch up with it (see sqlite_store's module doc)."""
    from engine.actors import sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.005)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_FRAMES", 64, raising=False)
    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT", 256 * 1024, raising=False)
    path = tmp_path / "state.db"
    wal = tmp_path / "state.db-wal"
    writes, value = 6000, b"x" * 100

    async def go() -> int:
        b = SqliteBackend(path)
        ns = b.namespace("steady")
        largest = 0
        for i in range(writes):
            ns.put(f"k{i:05}", value)
            await ns.flush()
            if i % 50 == 0:
                largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        b.close()
        return largest

    largest = asyncio.run(go())
    unbounded = writes * 4096  # every commit appends at least one page to a log never started over
    assert largest < unbounded / 4, f"the log reached {largest:,} B; unbounded it would pass {unbounded:,} B"
    again = SqliteBackend(path)
    assert len(again.namespace("steady").list("k")) == writes  # nothing committed was lost on the way
    again.close()


def test_failing_checkpoints_are_said_once_a_streak_and_commits_go_on(tmp_path, monkeypatch, caplog):
    """A full disk would fail a checkpoint every half second: one warning, then one when they work."""
    from engine.actors import sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.005)
    real = sqlite3.connect
    calls = []

    class FailingThenFine:
        def execute(self, sql):
            calls.append(sql)
            if len(calls) <= 5:
                raise sqlite3.OperationalError("disk I/O error")
            return real(":memory:").execute("SELECT 0, 0, 0")

        def close(self):
            pass

    def connect(path, *args, check_same_thread=True, **kwargs):  # the checkpointer's own connection
        return FailingThenFine() if not check_same_thread else real(path, *args, check_same_thread=True, **kwargs)

    monkeypatch.setattr(sqlite_store.sqlite3, "connect", connect)
    caplog.set_level("WARNING", logger="engine")

    async def go():
        b = SqliteBackend(tmp_path / "state.db")
        ns = b.namespace("s")
        for i in range(200):
            if len(calls) > 8:
                break
            ns.put(f"k{i}", b"v")
            await ns.flush()  # commits are not the checkpointer's business
            await asyncio.sleep(0.005)
        b.close()

    asyncio.run(go())
    said = [r.getMessage() for r in caplog.records if "checkpoints" in r.getMessage()]
    assert len(calls) > 8
    assert len(said) == 2 and "failing" in said[0] and "disk I/O error" in said[0] and "work again" in said[1]
