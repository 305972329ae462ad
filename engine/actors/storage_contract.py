"""The storage contract as executable checks: what every backend's namespace must do.

Plain functions over one fresh :class:`~engine.storage.Storage` namespace, raising
AssertionError with a message when a backend breaks the contract. The test suite runs
them against the memory and SQLite backends, and the Cloudflare Worker runs the very
same functions inside a Durable Object (a test hook), so all three are held to one text.
Checks that need several namespaces (isolation, drop, alarms across actors) are backend
level and live in the tests.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..protocol.storage import Storage


def _eq(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def check_get_put_delete(s: Storage) -> None:
    _eq(s.get("k"), None, "get of a missing key")
    s.put("k", b"v1")
    s.put("k", b"v2")
    _eq(s.get("k"), b"v2", "get after two puts")
    s.put("bin", bytes(range(256)))
    _eq(s.get("bin"), bytes(range(256)), "binary values round-trip")
    s.put("empty", b"")
    _eq(s.get("empty"), b"", "an empty value is a value")
    s.delete("k")
    s.delete("never-there")
    _eq(s.get("k"), None, "get after delete")


def check_list_by_prefix_in_key_order(s: Storage) -> None:
    keys = ("e/2/0003", "e/1/0002", "e/1/0010", "e/1/0001", "f/1", "e/", "e0")
    for key in keys:
        s.put(key, key.encode())
    _eq([k for k, _ in s.list("e/1/")], ["e/1/0001", "e/1/0002", "e/1/0010"], "list(prefix)")
    _eq([k for k, _ in s.list("e/1/", after="e/1/0002")], ["e/1/0010"], "list(prefix, after)")
    _eq([k for k, _ in s.list("e/1/", after="a")], ["e/1/0001", "e/1/0002", "e/1/0010"], "after below the prefix")
    _eq([k for k, _ in s.list("e/")], ["e/", "e/1/0001", "e/1/0002", "e/1/0010", "e/2/0003"], "a nested prefix")
    _eq(s.list("e/2/"), [("e/2/0003", b"e/2/0003")], "values come with keys")
    _eq([k for k, _ in s.list("")], sorted(keys), "the empty prefix lists everything")
    s.delete_prefix("e/1/")
    _eq([k for k, _ in s.list("e")], ["e/", "e/2/0003", "e0"], "delete_prefix")


def check_transactions_roll_back_on_error(s: Storage) -> None:
    s.put("keep", b"1")
    s.put("p/1", b"x")

    def failing() -> None:
        s.put("keep", b"2")
        s.put("new", b"x")
        s.delete("keep")
        s.delete_prefix("p/")
        raise RuntimeError("boom")

    try:
        s.transaction(failing)
    except RuntimeError:
        pass
    else:
        raise AssertionError("transaction() swallowed the exception")
    _eq((s.get("keep"), s.get("new"), s.get("p/1")), (b"1", None, b"x"), "state after a failed transaction")
    _eq(s.transaction(lambda: s.put("new", b"y") or "done"), "done", "transaction() returns fn's result")
    _eq(s.get("new"), b"y", "a committed transaction's write")


def check_alarm(s: Storage) -> None:
    _eq(s.get_alarm(), None, "no alarm at first")
    s.set_alarm(2_000_000_000.5)
    s.set_alarm(2_000_000_100.0)  # one alarm per namespace: the last set wins
    _eq(s.get_alarm(), 2_000_000_100.0, "get_alarm after set_alarm")
    s.delete_alarm()
    _eq(s.get_alarm(), None, "get_alarm after delete_alarm")


async def check_flush_is_a_barrier(s: Storage) -> None:
    s.put("durable", b"yes")
    s.set_alarm(2_000_000_000.0)
    await s.flush()
    await s.flush()  # nothing pending: returns at once
    _eq(s.get("durable"), b"yes", "a write after flush")
    s.delete_alarm()
    await s.flush()


CHECKS: dict[str, Callable[[Storage], Any]] = {
    "get_put_delete": check_get_put_delete,
    "list_by_prefix_in_key_order": check_list_by_prefix_in_key_order,
    "transactions_roll_back_on_error": check_transactions_roll_back_on_error,
    "alarm": check_alarm,
    "flush_is_a_barrier": check_flush_is_a_barrier,
}


async def run(name: str, storage: Storage) -> None:
    """Run one check on a fresh namespace (sync or async, the caller need not know)."""
    result = CHECKS[name](storage)
    if isinstance(result, Awaitable):
        await result
