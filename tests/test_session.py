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
    s.subscribe("a://b")
    again = Session("sid", storage)  # what a restarted actor would load
    assert again.state.phase == OPERATING
    assert again.state.log_level == "warning" and again.state.subscriptions == ["a://b"]
    assert again.client_supports("sampling") and not again.client_supports("roots")


def test_in_flight_ids_and_log_levels():
    s = Session("sid", MemoryBackend().namespace("s"))
    s.begin(1)
    s.begin("1")  # a string id is a different id
    with pytest.raises(ProtocolError) as info:
        s.begin(1)
    assert info.value.code == -32600
    s.end(1)
    s.begin(1)
    assert s.logs("debug")  # no level set: everything goes
    s.set_log_level("error")
    assert not s.logs("warning") and s.logs("critical")
    with pytest.raises(ProtocolError) as info:
        s.set_log_level("loud")
    assert info.value.code == -32602
    assert [s.next_server_request_id() for _ in range(3)] == [0, 1, 2]


def test_session_ids_are_random_visible_ascii():
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) >= 32 and all(0x21 <= ord(c) <= 0x7E for c in i) for i in ids)
