"""A session's SSE streams and their event logs, kept in the actor's storage.

Every message the server sends on a stream is framed as an SSE event, given the id
``<stream>:<counter>`` and written to storage *before* it goes to any connection, so a
client that lost its connection can ``GET`` with ``Last-Event-ID`` and get exactly the
events it missed, from that stream only. Ids come from per-session counters, never from
JSON-RPC ids, so two sessions (or two requests) reusing ``id: 1`` cannot see each
other's events. Stream 0 is the standalone GET stream; each request POST gets the next
number, from a block reserved in storage so ids stay unique across restarts. A priming
event takes a counter like any event and is stored empty, so after a restart no id is
handed out twice.

Storage layout: ``e/<stream>/<counter>`` holds a framed event; ``s/<stream>`` a
:class:`StreamRecord`, written once a stream outlives the tick that opened it, and when it
finishes; ``r/streams`` the reserved stream-id block. A request answered in the tick that
opened its stream (the hot path) writes its response event and nothing else: a request
stream with events and no record is one that finished and was delivered at once.

Retention (:class:`StreamLimits`): each stream keeps at most ``max_events`` events and
``max_bytes`` bytes (a ring; the GET stream lives on this way). A request stream whose
final response was delivered is dropped ``grace`` seconds later, or sooner once
``keep_finished`` newer ones were delivered; one that finished while nobody listened is
kept for its client to resume, up to ``keep_undelivered`` of them.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Union

import msgspec

from . import sse
from .jsonrpc import RequestId
from .storage import Storage

log = logging.getLogger("engine")

GET_STREAM = 0
STREAM_ID_BLOCK = 1024


class StreamLimits(msgspec.Struct, kw_only=True, frozen=True):
    max_events: int = 1000
    max_bytes: int = 4 * 1024 * 1024
    keep_finished: int = 64
    keep_undelivered: int = 256
    grace: float = 60.0


class StreamRecord(msgspec.Struct, array_like=True):
    request_id: Union[int, str, None]
    finished: bool = False
    delivered: bool = False
    finished_at: float = 0.0


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(StreamRecord).decode


class Stream:
    __slots__ = ("id", "prefix", "counter", "first", "size", "request_id", "finished", "delivered", "finished_at",
                 "recorded")

    def __init__(self, stream_id: int, request_id: RequestId | None = None):
        self.id = stream_id
        self.prefix = f"e/{stream_id:010d}/"  # its events' keys: prefix + zero-padded counter
        self.counter = 0  # last counter handed out
        self.first = 1  # oldest counter still stored
        self.size = 0  # bytes stored
        self.request_id = request_id
        self.finished = False
        self.delivered = False
        self.finished_at = 0.0
        self.recorded = False  # whether s/<id> exists in storage

    def record(self) -> bytes:
        return _encode(StreamRecord(self.request_id, self.finished, self.delivered, self.finished_at))


def _key(stream_id: int, counter: int) -> str:
    return f"e/{stream_id:010d}/{counter:010d}"


def _record_key(stream_id: int) -> str:
    return f"s/{stream_id:010d}"


def _digits(text: str) -> bool:
    """ASCII digits only, at most 10 (``str.isdigit`` also takes ``¹²`` and other scripts')."""
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit()


class BadEventId(ValueError):
    """``Last-Event-ID`` is malformed or names a stream this session does not keep."""


class Totals:
    """Events appended and replayed by every log of this process, for operators: a plain
    integer add per event (read by :mod:`engine.observe.metrics`)."""

    __slots__ = ("appended", "replayed", "resumed")

    def __init__(self) -> None:
        self.appended = self.replayed = self.resumed = 0


TOTALS = Totals()


class EventLog:
    __slots__ = ("storage", "limits", "clock", "streams", "_delivered", "_undelivered", "_reserved", "next_stream")

    def __init__(self, storage: Storage, limits: StreamLimits | None = None,
                 clock: Callable[[], float] = time.time, fresh: bool = False):
        """``fresh``: a new session's log, so there is nothing in storage to restore."""
        self.storage = storage
        self.limits = limits or StreamLimits()
        self.clock = clock
        self.streams: dict[int, Stream] = {}
        # Finished streams, oldest first. Lists, not deques: an empty deque costs ~600 bytes
        # and every idle session holds two of these; they never exceed a few hundred ids.
        self._delivered: list[int] = []
        self._undelivered: list[int] = []
        raw = None if fresh else storage.get("r/streams")
        self._reserved = int(raw) if raw else 0
        self.next_stream = max(self._reserved, 1)
        if not fresh:
            self._load()

    # -- restore ----------------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild streams from storage (an actor waking from hibernation or a restart)."""
        streams = self.streams
        for key, raw in self.storage.list("s/"):
            rec = _decode_record(raw)
            stream = Stream(int(key[2:]), rec.request_id)
            stream.finished, stream.delivered, stream.finished_at = rec.finished, rec.delivered, rec.finished_at
            stream.recorded = True
            streams[stream.id] = stream
        now = self.clock()
        seen: set[int] = set()
        for key, frame in self.storage.list("e/"):  # key order: each stream's oldest first
            sid, n = int(key[2:12]), int(key[13:])
            stream = streams.get(sid)
            if stream is None:
                stream = streams[sid] = Stream(sid)
                if sid != GET_STREAM:  # no record: answered and delivered in the tick it opened
                    stream.finished, stream.delivered, stream.finished_at = True, True, now
            if sid not in seen:
                seen.add(sid)
                stream.first = n
            stream.counter = n
            stream.size += len(frame)
        done = sorted((s for s in streams.values() if s.finished), key=lambda s: s.finished_at)
        self._delivered.extend(s.id for s in done if s.delivered)
        self._undelivered.extend(s.id for s in done if not s.delivered)

    @property
    def get_stream(self) -> Stream:
        """The session's GET stream, made when first needed (an idle session that never
        used it holds none)."""
        stream = self.streams.get(GET_STREAM)
        if stream is None:
            stream = self.streams[GET_STREAM] = Stream(GET_STREAM)
        return stream

    def orphans(self) -> list[Stream]:
        """Request streams left unfinished: their handlers died with the process."""
        return [s for s in self.streams.values() if s.id != GET_STREAM and not s.finished]

    # -- writing ----------------------------------------------------------------------------

    def open(self, request_id: RequestId | None) -> Stream:
        if self.next_stream >= self._reserved:
            self._reserved = self.next_stream + STREAM_ID_BLOCK
            self.storage.put("r/streams", str(self._reserved).encode())
        stream = Stream(self.next_stream, request_id)
        self.next_stream += 1
        self.streams[stream.id] = stream
        return stream

    def persist(self, stream: Stream) -> None:
        """Record an open stream (its request outlives this tick), so a restart can end it."""
        self.storage.put(_record_key(stream.id), stream.record())
        stream.recorded = True

    def prime(self, stream: Stream, retry_ms: int, store: bool = True) -> bytes:
        """A priming event for a new connection: it takes a counter and is stored empty, so a
        restart never hands its id out again. ``store=False`` when an event follows in the
        same tick (that event's key then keeps the counter)."""
        stream.counter += 1
        if store:
            self.storage.put(f"{stream.prefix}{stream.counter:010d}", b"")
        elif stream.first == stream.counter:
            stream.first += 1  # nothing stored under this counter: the oldest kept is the next
        self._trim(stream)
        return sse.priming(f"{stream.id}:{stream.counter}", retry_ms)

    def append(self, stream: Stream, payload: bytes) -> bytes:
        """Frame ``payload`` as the stream's next event and store it; returns the frame."""
        stream.counter += 1
        TOTALS.appended += 1
        frame = sse.event(f"{stream.id}:{stream.counter}", payload)
        self.storage.put(f"{stream.prefix}{stream.counter:010d}", frame)
        stream.size += len(frame)
        self._trim(stream)
        return frame

    def _trim(self, stream: Stream) -> None:
        limits = self.limits
        while stream.first < stream.counter and (
            stream.counter - stream.first >= limits.max_events or stream.size > limits.max_bytes
        ):
            key = _key(stream.id, stream.first)
            old = self.storage.get(key)
            if old is not None:
                stream.size -= len(old)
                self.storage.delete(key)
            stream.first += 1

    def finish(self, stream: Stream, delivered: bool) -> float | None:
        """The stream's request is over; ``delivered``: its last event went to a live connection.
        Returns when the next stream falls due for dropping (see :meth:`expire`).

        A stream never recorded (answered in the tick it opened, and delivered) needs no
        record: its events alone say so on restore.
        """
        if stream.finished:
            return None
        stream.finished = True
        stream.delivered = delivered
        stream.finished_at = self.clock()
        if stream.recorded or not delivered:
            self.storage.put(_record_key(stream.id), stream.record())
            stream.recorded = True
        (self._delivered if delivered else self._undelivered).append(stream.id)
        return self.expire(stream.finished_at)

    def delivered(self, stream: Stream) -> float | None:
        """A client resumed a finished stream and got its end: the grace period starts now.
        Returns when the next stream falls due (see :meth:`expire`)."""
        if not stream.finished or stream.delivered:
            return None
        stream.delivered = True
        stream.finished_at = self.clock()
        self.storage.put(_record_key(stream.id), stream.record())
        stream.recorded = True
        try:
            self._undelivered.remove(stream.id)
        except ValueError:
            pass
        self._delivered.append(stream.id)
        return self.expire(stream.finished_at)

    def expire(self, now: float) -> float | None:
        """Drop streams past their retention; returns when the next one falls due."""
        limits = self.limits
        while self._delivered:
            oldest = self.streams.get(self._delivered[0])
            if oldest is not None and len(self._delivered) <= limits.keep_finished \
                    and oldest.finished_at + limits.grace > now:
                return oldest.finished_at + limits.grace
            self._drop(self._delivered.pop(0))
        while len(self._undelivered) > limits.keep_undelivered:
            self._drop(self._undelivered.pop(0))
        return None

    def _drop(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        # Delete the keys it is known to hold, rather than scanning for a prefix.
        prefix = stream.prefix
        for n in range(stream.first, stream.counter + 1):
            self.storage.delete(f"{prefix}{n:010d}")
        if stream.recorded:
            self.storage.delete(_record_key(stream_id))

    # -- reading ----------------------------------------------------------------------------

    def replay(self, last_event_id: str) -> tuple[Stream, list[bytes]]:
        """The stream ``last_event_id`` belongs to and its stored events after it, in order."""
        stream_part, sep, counter_part = last_event_id.strip().partition(":")
        if not sep or not _digits(stream_part) or not _digits(counter_part):
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
        if counter + 1 < stream.first:
            log.warning("stream %d: resuming after %d, but events before %d have left its ring",
                        stream.id, counter, stream.first)
        rows = self.storage.list(f"e/{stream.id:010d}/", after=_key(stream.id, counter))
        frames = [frame for _, frame in rows if frame]
        TOTALS.resumed += 1
        TOTALS.replayed += len(frames)
        return stream, frames

    def drop(self) -> None:
        """Delete the whole namespace: the session is over."""
        self.storage.delete_prefix("")
        self.streams.clear()
