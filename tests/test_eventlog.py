import pytest

from engine.protocol.eventlog import BadEventId, EventLog, StreamLimits
from engine.actors.memory_store import MemoryBackend


def storage():
    return MemoryBackend().namespace("s")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_ids_are_stream_and_counter_and_replay_is_per_stream():
    log = EventLog(storage())
    a, b = log.open(1), log.open(1)  # the same JSON-RPC id twice: different streams
    assert (a.id, b.id) == (1, 2)
    assert log.prime(a, 500) == b"id: 1:1\nretry: 500\ndata: \n\n"
    for i in range(3):
        log.append(a, b'{"a":%d}' % i)
        log.append(b, b'{"b":%d}' % i)
    stream, frames = log.replay("1:2")
    assert stream is a
    assert [f.split(b"\n")[0] for f in frames] == [b"id: 1:3", b"id: 1:4"]
    assert all(b'"a"' in f for f in frames)
    assert log.replay("2:2")[1] == [b'id: 2:3\nevent: message\ndata: {"b":2}\n\n']
    assert [f.split(b"\n")[0] for f in log.replay("1:0")[1]] == [b"id: 1:2", b"id: 1:3", b"id: 1:4"]  # priming is not replayed


def test_ring_bounds_events_and_bytes():
    st = storage()
    log = EventLog(st, StreamLimits(max_events=5))
    s = log.get_stream
    for i in range(12):
        log.append(s, b"%d" % i)
    _, frames = log.replay("0:0")
    assert [f.split(b"\n")[0] for f in frames] == [b"id: 0:%d" % n for n in range(8, 13)]
    assert len(st.data) == 5
    st2 = storage()
    log = EventLog(st2, StreamLimits(max_bytes=200))
    s = log.get_stream
    for i in range(10):
        log.append(s, b"x" * 50)
    assert s.size <= 200 and sum(len(v) for v in st2.data.values()) == s.size
    assert len(log.replay("0:0")[1]) == s.counter - s.first + 1 == 2


def test_delivered_streams_leave_after_grace_or_count():
    clock = Clock()
    st = storage()
    log = EventLog(st, StreamLimits(keep_finished=2, grace=10), clock=clock)
    streams = [log.open(i) for i in range(4)]
    for s in streams:
        log.append(s, b"x")
        log.finish(s, delivered=True)
    assert sorted(log.streams) == [3, 4]  # the count bound (the GET stream is made when first needed)
    with pytest.raises(BadEventId):
        log.replay("1:1")
    clock.now += 5
    assert log.expire(clock.now) == 1010.0
    clock.now += 5
    assert log.expire(clock.now) is None and sorted(log.streams) == []  # the grace period
    assert [k for k in st.data if not k.startswith("r/")] == []


def test_undelivered_streams_wait_for_their_client():
    clock = Clock()
    st = storage()
    log = EventLog(st, StreamLimits(keep_finished=1, keep_undelivered=2, grace=10), clock=clock)
    s = log.open(7)
    log.append(s, b"final")
    log.finish(s, delivered=False)
    clock.now += 1000
    log.expire(clock.now)
    assert log.replay("1:0")[1] == [b"id: 1:1\nevent: message\ndata: final\n\n"]  # still there
    log.delivered(s)
    assert log.expire(clock.now) == clock.now + 10
    clock.now += 11
    log.expire(clock.now)
    assert 1 not in log.streams
    for i in range(3):  # more undelivered than kept: the oldest go
        t = log.open(i)
        log.finish(t, delivered=False)
    assert sorted(log.streams) == [3, 4]


def test_restore_gives_identical_streams():
    st = storage()
    log = EventLog(st)
    a = log.open("req")
    log.prime(a, 100)
    log.append(a, b"one")
    log.persist(a)
    b = log.open(2)
    log.append(b, b"two")
    log.finish(b, delivered=True)
    g = log.get_stream
    log.prime(g, 100)
    log.append(g, b"note")
    again = EventLog(st)
    assert sorted(again.streams) == sorted(log.streams)
    for sid, s in log.streams.items():
        r = again.streams[sid]
        assert (r.counter, r.first, r.size, r.finished, r.delivered, r.recorded) == \
            (s.counter, s.first, s.size, s.finished, s.delivered, s.recorded)
    # b finished and was delivered in the tick it opened: only its event was written, and
    # that alone restores it as finished and delivered (its request id no longer matters).
    assert not b.recorded and [k for k in st.data if k.startswith("s/")] == ["s/0000000001"]
    assert again.streams[a.id].request_id == "req"
    assert [s.id for s in again.orphans()] == [a.id]
    assert again.open(None).id > b.id  # ids are never handed out twice
    assert again.replay("1:1")[1] == log.replay("1:1")[1]


@pytest.mark.parametrize("bad", ["", "x", "1", "1:", ":1", "a:b", "5:0", "0:99"])
def test_bad_event_ids(bad):
    with pytest.raises(BadEventId):
        EventLog(storage()).replay(bad)
