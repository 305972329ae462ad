"""A session's SSE streams and their event logs.

Every message the server sends on a stream is framed as an SSE event, given the id
``<stream>:<counter>`` and written to storage *before* it goes to any connection, so a
client that lost its connection can ``GET`` with ``Last-Event-ID`` and get exactly the
events it missed, from that stream only. Ids come from per-session counters, never from
JSON-RPC ids, so two sessions (or two requests) reusing ``id: 1`` cannot see each
other's events.

Stream 0 is the standalone GET stream; each request POST gets the next number. A priming
event takes the next counter like any event but carries no message and is not stored.

Bounds: each stream keeps its last ``max_events`` events (a ring); a finished stream is
kept for resumption until ``keep_finished`` newer streams have finished, then dropped.
"""

from __future__ import annotations

from collections import deque

from . import sse
from .jsonrpc import RequestId
from .storage import Storage

GET_STREAM = 0


class Stream:
    __slots__ = ("id", "counter", "request_id", "finished")

    def __init__(self, stream_id: int, request_id: RequestId | None = None):
        self.id = stream_id
        self.counter = 0
        self.request_id = request_id
        self.finished = False


def _prefix(stream_id: int) -> str:
    return f"e/{stream_id:010d}/"


def _key(stream_id: int, counter: int) -> str:
    return f"e/{stream_id:010d}/{counter:010d}"


class BadEventId(ValueError):
    """``Last-Event-ID`` is malformed or names a stream this session does not keep."""


class EventLog:
    def __init__(self, storage: Storage, max_events: int = 1000, keep_finished: int = 64):
        self.storage = storage
        self.max_events = max_events
        self.keep_finished = keep_finished
        self.streams: dict[int, Stream] = {GET_STREAM: Stream(GET_STREAM)}
        self.next_stream = 1
        self._finished: deque[int] = deque()

    def open(self, request_id: RequestId | None) -> Stream:
        stream = Stream(self.next_stream, request_id)
        self.next_stream += 1
        self.streams[stream.id] = stream
        return stream

    def prime(self, stream: Stream, retry_ms: int) -> bytes:
        """A priming event for a new connection; it takes a counter (ids stay unique) but
        is not stored, so resuming from it replays only what came after."""
        stream.counter += 1
        return sse.priming(f"{stream.id}:{stream.counter}", retry_ms)

    def append(self, stream: Stream, payload: bytes) -> bytes:
        """Frame ``payload`` as the stream's next event and store it; returns the frame."""
        stream.counter += 1
        n = stream.counter
        frame = sse.event(f"{stream.id}:{n}", payload)
        self.storage.put(_key(stream.id, n), frame)
        if n > self.max_events:
            self.storage.delete(_key(stream.id, n - self.max_events))
        return frame

    def finish(self, stream: Stream) -> None:
        if stream.finished:
            return
        stream.finished = True
        self._finished.append(stream.id)
        while len(self._finished) > self.keep_finished:
            old = self.streams.pop(self._finished.popleft(), None)
            if old is not None:
                # Delete the keys we know it holds, rather than scanning for a prefix.
                for n in range(max(1, old.counter - self.max_events + 1), old.counter + 1):
                    self.storage.delete(_key(old.id, n))

    def replay(self, last_event_id: str) -> tuple[Stream, list[bytes]]:
        """The stream ``last_event_id`` belongs to and its stored events after it, in order."""
        stream_part, sep, counter_part = last_event_id.strip().partition(":")
        if not sep or not stream_part.isdigit() or not counter_part.isdigit():
            raise BadEventId(
                f"Last-Event-ID {last_event_id!r} is not an event id of this server "
                "(expected '<stream>:<counter>')"
            )
        stream = self.streams.get(int(stream_part))
        counter = int(counter_part)
        if stream is None or counter > stream.counter:
            raise BadEventId(
                f"Last-Event-ID {last_event_id!r} names a stream this session no longer keeps; "
                "its events have expired"
            )
        frames = [v for _, v in self.storage.list(_prefix(stream.id), after=_key(stream.id, counter))]
        return stream, frames

    def drop(self) -> None:
        self.storage.delete_prefix("e/")
        self.streams.clear()
