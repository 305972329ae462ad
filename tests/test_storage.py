"""The storage contract, one suite for every backend (the Durable Object backend joins later)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from engine.sqlite_store import SqliteBackend, StoreError
from engine.storage import MemoryBackend


@pytest.fixture(params=["memory", "sqlite"])
def backend(request, tmp_path):
    b = MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "state.db")
    yield b
    b.close()


def test_get_put_delete(backend):
    s = backend.namespace("a")
    assert s.get("k") is None
    s.put("k", b"v1")
    s.put("k", b"v2")
    assert s.get("k") == b"v2"
    s.delete("k")
    s.delete("never-there")
    assert s.get("k") is None


def test_list_by_prefix_in_key_order(backend):
    s = backend.namespace("a")
    for key in ("e/2/0003", "e/1/0002", "e/1/0010", "e/1/0001", "f/1", "e/", "e0"):
        s.put(key, key.encode())
    assert [k for k, _ in s.list("e/1/")] == ["e/1/0001", "e/1/0002", "e/1/0010"]
    assert [k for k, _ in s.list("e/1/", after="e/1/0002")] == ["e/1/0010"]
    assert [k for k, _ in s.list("e/1/", after="a")] == ["e/1/0001", "e/1/0002", "e/1/0010"]
    assert [k for k, _ in s.list("e/")] == ["e/", "e/1/0001", "e/1/0002", "e/1/0010", "e/2/0003"]
    assert [v for _, v in s.list("e/2/")] == [b"e/2/0003"]
    assert [k for k, _ in s.list("")] == sorted(["e/2/0003", "e/1/0002", "e/1/0010", "e/1/0001", "f/1", "e/", "e0"])
    s.delete_prefix("e/1/")
    assert [k for k, _ in s.list("e")] == ["e/", "e/2/0003", "e0"]


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


def test_transactions_roll_back_on_error(backend):
    s = backend.namespace("a")
    s.put("keep", b"1")
    s.put("p/1", b"x")

    def failing():
        s.put("keep", b"2")
        s.put("new", b"x")
        s.delete("keep")
        s.delete_prefix("p/")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        s.transaction(failing)
    assert s.get("keep") == b"1" and s.get("new") is None and s.get("p/1") == b"x"

    def outer():
        s.put("new", b"y")

        def inner():
            s.put("inner", b"z")
            raise ValueError

        with pytest.raises(ValueError):
            s.transaction(inner)
        return "done"

    assert s.transaction(outer) == "done"
    assert s.get("new") == b"y" and s.get("inner") is None


def test_alarms(backend):
    a, b = backend.namespace("a"), backend.namespace("b")
    assert a.get_alarm() is None and backend.next_alarm() is None
    a.set_alarm(50.0)
    b.set_alarm(20.0)
    a.set_alarm(30.0)  # one alarm per namespace: the last one set wins
    assert a.get_alarm() == 30.0
    assert backend.next_alarm() == 20.0
    assert backend.due_alarms(25.0) == [("b", 20.0)]
    assert backend.due_alarms(40.0) == [("b", 20.0), ("a", 30.0)]
    b.delete_alarm()
    assert backend.due_alarms(40.0) == [("a", 30.0)]


def test_flush_is_a_barrier(backend):
    async def go():
        s = backend.namespace("a")
        s.put("k", b"v")
        await s.flush()
        await s.flush()  # nothing pending: returns at once
        assert s.get("k") == b"v"
    asyncio.run(go())


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
