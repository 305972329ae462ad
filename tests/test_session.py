import pytest

from engine.protocol.jsonrpc import ProtocolError
from engine.protocol.session import READY, OPERATING, Session, negotiate, new_session_id
from engine.actors.memory_store import MemoryBackend


def test_negotiation():
    assert negotiate("2025-06-18") == "2025-06-18"
    assert negotiate("2024-11-05") == "2024-11-05"
    assert negotiate("2030-01-01") == "2025-11-25"
    assert negotiate(None) == "2025-11-25"


def test_lifecycle_and_state_persist():
    storage = MemoryBackend().namespace("s")
    s = Session("sid", storage)
    assert not s.ready
    assert s.initialize({"protocolVersion": "2025-06-18", "capabilities": {"sampling": {}},
                         "clientInfo": {"name": "c"}}) == "2025-06-18"
    assert s.state.phase == READY and s.ready and not s.primes
    with pytest.raises(ProtocolError):
        s.initialize({})
    s.initialized()
    s.set_log_level("warning")
    s.subscribe("a://b", 10)
    again = Session("sid", storage)  # what a restarted actor would load
    assert again.state.phase == OPERATING
    assert again.state.log_level == "warning" and again.subscribes("a://b") and not again.subscribes("a://c")
    assert again.client_supports("sampling") and not again.client_supports("roots")


@pytest.mark.parametrize("params", [
    {},
    {"protocolVersion": 20251125, "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
    {"protocolVersion": "2025-11-25", "capabilities": [], "clientInfo": {"name": "c", "version": "1"}},
    {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": "c"},
    {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": 1}},
    {"protocolVersion": "2025-11-25", "capabilities": {}},
])
def test_mistyped_initialize_params_are_invalid_params(params):
    s = Session("sid", MemoryBackend().namespace("s"))
    with pytest.raises(ProtocolError) as info:
        s.initialize(params)
    assert info.value.code == -32602 and "Invalid params" in info.value.message
    assert s.state.phase == "new"


def test_in_flight_ids_and_log_levels():
    s = Session("sid", MemoryBackend().namespace("s"))
    with pytest.raises(ProtocolError) as info:
        s.begin(1, "tools/list")  # lifecycle: nothing but initialize and ping before initialize
    assert info.value.code == -32600 and "not initialized" in info.value.message
    s.begin(1, "ping")
    s.end(1)
    s.initialize({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}})
    s.begin(1, "tools/list")
    s.begin("1", "tools/list")  # a string id is a different id
    with pytest.raises(ProtocolError) as info:
        s.begin(1, "tools/list")
    assert info.value.code == -32600
    s.end(1)
    s.begin(1, "tools/list")
    assert s.logs("debug")  # no level set: everything goes
    s.set_log_level("error")
    assert not s.logs("warning") and s.logs("critical")
    for bad in ("loud", ["info"], {"level": "info"}, None, 3):
        with pytest.raises(ProtocolError) as info:
            s.set_log_level(bad)
        assert info.value.code == -32602
    assert [s.next_server_request_id() for _ in range(3)] == [0, 1, 2]


def test_session_ids_are_random_visible_ascii():
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) >= 32 and all(0x21 <= ord(c) <= 0x7E for c in i) for i in ids)


def test_subscriptions_are_stored_per_key_capped_and_flat():
    class Recording:
        """The namespace, with a record of the keys written."""

        def __init__(self, inner):
            self.inner, self.writes = inner, []

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def put(self, key, value):
            self.writes.append(key)
            self.inner.put(key, value)

    storage = Recording(MemoryBackend().namespace("s"))
    s = Session("sid", storage)
    s.initialize({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}})
    meta = storage.get("meta")
    writes = storage.writes
    writes.clear()
    for i in range(500):
        s.subscribe(f"r://{i}", 500)
    # one small key per call, and the session record is never rewritten
    assert writes == [f"u/r://{i}" for i in range(500)] and storage.get("meta") == meta
    s.subscribe("r://7", 500)  # already subscribed: nothing to do, even at the cap
    with pytest.raises(ProtocolError) as info:
        s.subscribe("r://one-too-many", 500)
    assert info.value.code == -32602 and "Too many subscriptions" in info.value.message
    with pytest.raises(ProtocolError) as info:
        s.subscribe("r://" + "x" * 5000, 1000)
    assert info.value.code == -32602
    s.unsubscribe("r://7")
    s.subscribe("r://one-more", 500)
    again = Session("sid", storage)
    assert again.subscribes("r://one-more") and not again.subscribes("r://7") and again.subscribes("r://8")


def test_a_record_from_before_per_key_subscriptions_is_moved_on_load():
    import msgspec

    storage = MemoryBackend().namespace("s")
    old = {"version": "2025-11-25", "phase": "operating", "subscriptions": ["a://1", "a://2"]}
    storage.put("meta", msgspec.json.encode(old))
    s = Session("sid", storage)
    assert s.subscribes("a://1") and s.subscribes("a://2")
    assert storage.get("u/a://1") == b"" and msgspec.json.decode(storage.get("meta"))["subscriptions"] == []
