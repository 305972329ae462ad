from engine.eventlog import GET_STREAM, BadEventId, EventLog
from engine.storage import MemoryStorage

import pytest


def test_ids_are_stream_and_counter_and_replay_is_per_stream():
    log = EventLog(MemoryStorage())
    a, b = log.open(1), log.open(1)  # the same JSON-RPC id twice: different streams
    assert (a.id, b.id) == (1, 2)
    assert log.prime(a, 500).startswith(b"id: 1:1\nretry: 500\ndata: \n\n")
    for i in range(3):
        log.append(a, b'{"a":%d}' % i)
        log.append(b, b'{"b":%d}' % i)
    stream, frames = log.replay("1:2")
    assert stream is a
    assert [f.split(b"\n")[0] for f in frames] == [b"id: 1:3", b"id: 1:4"]
    assert all(b'"a"' in f for f in frames)
    assert log.replay("2:2")[1] == [b'id: 2:3\nevent: message\ndata: {"b":2}\n\n']


def test_ring_bound_per_stream():
    storage = MemoryStorage()
    log = EventLog(storage, max_events=5)
    s = log.streams[GET_STREAM]
    for i in range(12):
        log.append(s, b"%d" % i)
    _, frames = log.replay("0:0")
    assert [f.split(b"\n")[0] for f in frames] == [b"id: 0:%d" % n for n in range(8, 13)]
    assert len(storage.data) == 5


def test_finished_streams_are_dropped_after_newer_ones_finish():
    storage = MemoryStorage()
    log = EventLog(storage, keep_finished=2)
    streams = [log.open(i) for i in range(4)]
    for s in streams:
        log.append(s, b"x")
        log.finish(s)
    assert sorted(log.streams) == [GET_STREAM, 3, 4]
    with pytest.raises(BadEventId):
        log.replay("1:1")
    assert len(storage.data) == 2


@pytest.mark.parametrize("bad", ["", "x", "1", "1:", ":1", "a:b", "5:0", "0:99"])
def test_bad_event_ids(bad):
    with pytest.raises(BadEventId):
        EventLog(MemoryStorage()).replay(bad)
