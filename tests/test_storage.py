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


def test_sqlite_synchronous_mode_comes_from_the_store_spec(tmp_path):
    """``sqlite:PATH?synchronous=full`` (an fsync per group commit) reaches SQLite; the
    default is NORMAL (a commit survives the process, not the machine, going down)."""
    from engine.local.runtime import open_backend

    for spec, mode in ((f"sqlite:{tmp_path}/a.db", 1), (f"sqlite:{tmp_path}/b.db?synchronous=FULL", 2)):
        backend = open_backend(spec)
        try:
            assert backend.db.execute("PRAGMA synchronous").fetchone()[0] == mode, spec
            assert backend.path.name in ("a.db", "b.db")
        finally:
            backend.close()
    for bad in ("?synchronous=off", "?sync=full", "?synchronous"):
        with pytest.raises(StoreError, match=r"\?synchronous= normal or full"):
            open_backend(f"sqlite:{tmp_path}/c.db{bad}")


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
    passive checkpoints alone never catch up with it (see sqlite_store's module doc).

    Deterministic: the checkpoint thread is kept idle and its rounds are run here, one every
    ``EVERY`` commits, on a connection of their own as the thread has; so what is measured is
    what the writer does with them, not how the scheduler treated a thread."""
    from engine.actors import sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3600)  # the thread never runs a round itself
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_FRAMES", 64)
    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT", 256 * 1024)
    path = tmp_path / "state.db"
    wal = tmp_path / "state.db-wal"
    writes, every, value = 3000, 20, b"x" * 100

    async def go() -> tuple[int, int]:
        b = SqliteBackend(path)
        side = sqlite3.connect(path, isolation_level=None)
        ns = b.namespace("steady")
        largest, sequences = 0, set()
        try:
            for i in range(writes):
                ns.put(f"k{i:05}", value)
                if i % every == every - 1:
                    # While a write is open, as when the writer never pauses: the round
                    # copies the committed frames, and the frames of this write come after.
                    b._checkpointer.step(side)
                await ns.flush()
                size = wal.stat().st_size if wal.exists() else 0
                largest = max(largest, size)
                with open(wal, "rb") as f:  # the header's checkpoint sequence: +1 each time it starts over
                    sequences.add(f.read(16)[12:16])
        finally:
            side.close()
            b.close()
        return largest, len(sequences) - 1

    largest, restarts = asyncio.run(go())
    unbounded = writes * 4096  # every commit appends at least one page to a log never started over
    # Started over each time it passed the threshold: the file is never much past the
    # threshold plus one round's commits, and is cut back to WAL_SIZE_LIMIT each time.
    bound = 1024 * 1024  # (about 0.37 MB here; unhelped, the same writes leave an 18 MB log)
    assert largest < bound, f"the log reached {largest:,} B (bound {bound:,}; unbounded it would pass {unbounded:,} B)"
    assert restarts >= 3, f"the log was started over only {restarts} times"
    again = SqliteBackend(path)
    assert len(again.namespace("steady").list("k")) == writes  # nothing committed was lost on the way
    again.close()


def test_failing_checkpoints_are_said_once_a_streak_and_commits_go_on(tmp_path, monkeypatch, caplog):
    """A full disk would fail a checkpoint every half second: one warning, then one when they
    work. The checkpointer's rounds are driven here, one by one (no thread timing involved)."""
    from engine.actors import sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3600)
    calls = []

    class FailingThenFine:  # the checkpointer's connection: five failures, then fine
        def execute(self, sql):
            calls.append(sql)
            if len(calls) <= 5:
                raise sqlite3.OperationalError("disk I/O error")
            return sqlite3.connect(":memory:").execute("SELECT 0, 0, 0")

    caplog.set_level("WARNING", logger="engine")

    async def go():
        b = SqliteBackend(tmp_path / "state.db")
        ns = b.namespace("s")
        side = FailingThenFine()
        for i in range(9):
            b._checkpointer.step(side)
            ns.put(f"k{i}", b"v")
            await ns.flush()  # commits are not the checkpointer's business
        b.close()

    asyncio.run(go())
    said = [r.getMessage() for r in caplog.records if "checkpoints" in r.getMessage()]
    assert len(calls) == 9
    assert len(said) == 2 and "failing" in said[0] and "disk I/O error" in said[0] and "work again" in said[1]


# -- the PostgreSQL backend (engine.cluster.store) ----------------------------------------------


def _pg(url: str, lease: float = 5.0):
    from engine.cluster.store import PostgresBackend

    backend = PostgresBackend(url, lease=lease)

    async def started():
        await backend.start()
        await backend.register(f"http://{backend.node}.test", "test", 0)
        await backend.reserve_epochs()
        return backend

    return started()


@pytest.mark.parametrize("check", list(storage_contract.CHECKS))
def test_storage_contract_on_postgresql(database, check):
    """The same namespace-level contract, on a namespace claimed from PostgreSQL; and what
    it wrote reads back the same once claimed again (after its holder let go)."""
    async def go():
        backend = await _pg(database)
        ns = backend.fresh("contract")
        await storage_contract.run(check, ns)
        await ns.flush()
        kept, alarm = dict(ns.data), ns.get_alarm()
        ns.release()
        await ns.flush()
        again = await backend.claim("contract")
        assert again.data == kept and again.get_alarm() == alarm
        await backend.close()

    asyncio.run(go())


def test_postgresql_claims_fence_a_holder_whose_lease_ran_out(database):
    """A claim is refused while the holder beats; once its lease ran out, another process
    takes the namespace over with what was committed, and the old holder's writes are
    refused (fenced), not merged."""
    from engine.cluster.store import Fenced, Holder

    async def go():
        first = await _pg(database, lease=1.0)
        second = await _pg(database, lease=1.0)
        a = first.fresh("a")
        a.put("meta", b"v1")
        a.set_alarm(100.0)
        await a.flush()
        held = await second.claim("a", "meta")
        assert isinstance(held, Holder) and held.node == first.node and held.url.endswith(".test")
        assert await second.claim("missing", "meta") is None
        assert await second.due_alarms(200.0) == []  # first holds it and is alive
        assert await first.due_alarms(200.0) == [("a", 100.0)]
        await asyncio.sleep(1.2)  # first stops beating
        assert await second.due_alarms(200.0) == [("a", 100.0)]
        taken = await second.claim("a", "meta")
        assert taken.get("meta") == b"v1" and taken.get_alarm() == 100.0 and taken.epoch > a.epoch
        a.put("meta", b"late")
        with pytest.raises(Fenced):
            await a.flush()
        with pytest.raises(Fenced):
            await a.flush()  # and stays so
        assert first.fenced == 1 and first.held("a") is None
        taken.put("meta", b"v2")
        await taken.flush()
        assert await second.read("a", "meta") == b"v2"
        await first.close()
        await second.close()

    asyncio.run(go())


def test_postgresql_group_commit_is_one_round_trip_for_many_actors(database):
    async def go():
        backend = await _pg(database)
        spaces = [backend.fresh(f"s{i}") for i in range(40)]
        before = backend.groups
        for i, s in enumerate(spaces):
            s.put("meta", b"%d" % i)
            s.set_alarm(1000.0 + i)
        await asyncio.gather(*(s.flush() for s in spaces))
        assert backend.groups - before == 1
        # While one group commits, the next gathers: 3 rounds of writes take at most 3 groups more.
        for _ in range(3):
            for s in spaces:
                s.put("k", b"x")
            await asyncio.gather(*(s.flush() for s in spaces))
        assert backend.groups - before <= 4
        assert await backend.count("meta") == 40
        assert len(await backend.due_alarms(2000.0)) == 40
        spaces[0].drop()
        await spaces[0].flush()
        assert await backend.count("meta") == 39 and await backend.claim("s0", "meta") is None
        await backend.close()

    asyncio.run(go())


def test_postgresql_server_settings_in_the_url_reach_the_commits(database):
    """``?synchronous_commit=off`` in the store URL (docs/cluster.md, "Durability") is a
    server setting of every connection the backend opens, the commit connection's first:
    the opt-in trade of the last few commits on a database crash for shorter waits."""
    url = database + ("&" if "?" in database else "?") + "synchronous_commit=off"

    async def go():
        for given, expected in ((database, "on"), (url, "off")):
            backend = await _pg(given)
            ns = backend.fresh("durability")
            ns.put("meta", b"x")
            await ns.flush()
            assert await backend._commit_con.fetchval("SHOW synchronous_commit") == expected, given
            assert await backend._fetchval("SHOW synchronous_commit") == expected, given
            assert await backend.read("durability", "meta") == b"x"
            ns.drop()
            await ns.flush()
            await backend.close()

    asyncio.run(go())


def test_postgresql_a_failed_commit_fails_its_group_and_the_store_serves_again(database, postgres):
    """The database goes away mid-flight: the group's flushers hear StoreUnavailable, its
    namespaces never write again (their actors are replaced), and once the database is back
    a fresh claim finds what was committed before, and commits go on."""
    from engine.protocol.storage import StoreUnavailable

    async def go():
        backend = await _pg(database)
        ns = backend.fresh("x")
        ns.put("meta", b"committed")
        await ns.flush()
        name = database.rsplit("/", 1)[1]
        # The database goes away for this backend: no new connections, and the open ones
        # (the commit's among them) ended, waited for until they are gone (pg_terminate_backend
        # only signals them), so the next commit fails whichever connection it tries.
        postgres.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await backend.pool.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        for _ in range(100):
            if not await backend.pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                               "current_database() AND pid <> pg_backend_pid()"):
                break
            await asyncio.sleep(0.02)
        await backend.pool.expire_connections()
        ns.put("meta", b"lost")
        with pytest.raises(StoreUnavailable):
            await ns.flush()
        ns.put("meta", b"after")
        with pytest.raises(StoreUnavailable):
            await ns.flush()  # a namespace of a failed group stays failed
        postgres.psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")  # it is back
        again = None
        for _ in range(50):  # the pool reconnects by itself
            try:
                again = await backend.claim("x", "meta")
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert again is not None and again.get("meta") == b"committed"
        again.put("meta", b"v3")
        await again.flush()
        assert await backend.read("x", "meta") == b"v3"
        await backend.close()

    asyncio.run(go())


def test_postgresql_secret_and_schema(database):
    """Every process gets the same generated secret; a database holding another schema
    version is refused with a message."""
    from engine.cluster.database import StoreError

    async def go():
        one, two = await _pg(database), await _pg(database)
        assert await one.secret() == await two.secret() != ""
        await one.pool.execute("UPDATE mcp_actors.meta SET value = '99' WHERE key = 'schema'")
        await one.close()
        await two.close()
        with pytest.raises(StoreError, match="schema version 99"):
            await _pg(database)

    asyncio.run(go())
