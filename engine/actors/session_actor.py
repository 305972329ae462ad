"""The session actor: one per session, the same code in every runtime.

It owns a :class:`~engine.protocol.session.Session` (protocol state), an
:class:`~engine.protocol.eventlog.EventLog` (streams and their events) and the session's
live work: running handlers, live connections, and futures for requests sent to the
client. The runtime-neutral front (:mod:`engine.actors.front`) finds or creates it, calls
:meth:`SessionActor.serve` with a routed request and turns the
:class:`~engine.actors.connection.Reply` into an HTTP response; the runtime calls
:meth:`SessionActor.alarm` when storage's alarm fires. Handlers see it through the
:class:`~engine.app.context.HandlerHost` port, never directly.

Everything that affects the order of what is stored and what is sent lives in this file.
The rules, in the order a message meets them:

1. **Input gate.** A message's whole state transition (admission, the start of its
   handler, every event-log append it causes) runs without awaiting. asyncio runs one
   callback at a time, so messages apply one at a time in arrival order, as a Durable
   Object's input gate guarantees; nothing here takes a lock, and nothing may await
   between reading state and writing it back.
2. **Log before push.** Every message for a client is appended to the event log (and so
   written to storage) before it is pushed to any connection, so what a dropped
   connection missed is always replayable with ``Last-Event-ID``.
3. **Output gate.** No byte reaches a client before the writes it depends on are
   committed: a reply returns only after ``flush()``, and a connection hands its queued
   frames to the runtime only after the same barrier. If the store cannot commit, the
   actor closes and is replaced by one woken from what storage kept (rule 6 applies). ``flush`` is the only await
   between a request's arrival and its reply being released.
4. **Register before await.** A streaming request's connection is registered before the
   first await after its handler starts, so every frame the handler emits is queued on it.
5. **Record what outlives a tick.** A request stream that stays open past the tick that
   opened it gets a stored record; a request sent to the client is stored under
   ``p/<id>`` before it is emitted and deleted when answered or timed out. A restart
   finds these and ends them: each unfinished request stream gets the -32603 "server
   restarted" error, so a resuming client is answered instead of waiting forever.
6. **Closed first.** :meth:`close` sets ``closed`` before cancelling handlers, so a
   cancelled handler never finishes its stream: in a durable store the stream stays
   unfinished, and rule 5 ends it on the next activation.
7. **Session state** (``meta``) is written when it changes (``initialize``, the log
   level, subscriptions); the last-activity time at most every ``seen_every`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import msgspec
from msgspec import UNSET

from ..app.context import ClientError, Context
from ..app.dispatch import str_param
from ..protocol import http, jsonrpc, router, spec, sse
from ..protocol.auth import Principal, owner_of
from ..protocol.eventlog import GET_STREAM, BadEventId, EventLog, Stream, StreamLimits
from ..protocol.http import HttpConfig, HttpError, legacy_session_mismatch
from ..protocol.jsonrpc import Message, ProtocolError, RequestId
from ..protocol.router import Route
from ..protocol.session import Session
from ..protocol.storage import Storage, StoreUnavailable
from ..protocol.tasks import STATUS_NOTIFICATION_2025
from . import session_tasks, tracing
from .connection import ACCEPTED, Connection, Reply

log = logging.getLogger("engine")


def _error_payload(rid: RequestId, exc: Exception, method: str) -> bytes:
    """A handler's exception as its JSON-RPC error response."""
    if isinstance(exc, ProtocolError):
        return jsonrpc.error(rid, exc.code, exc.message, exc.data)
    if isinstance(exc, StoreUnavailable):  # (e.g. a task's record could not be stored)
        log.error("%s: %s", method, exc)
        return jsonrpc.error(rid, spec.STORE_UNAVAILABLE, "The server could not store this request (it was not "
                                                          "applied); retry shortly")
    log.exception("handler for %s failed", method, exc_info=exc)
    return jsonrpc.error(rid, spec.INTERNAL_ERROR, f"Internal error: {exc}")


class Lifetimes(msgspec.Struct, kw_only=True, frozen=True):
    """How long things live: sessions, actors in memory, streams' logs."""

    #: Seconds of inactivity after which a session is deleted (by its alarm).
    session_ttl: float = 3600.0
    #: Seconds of inactivity after which an actor leaves memory (hibernates).
    idle_evict: float = 30.0
    #: Seconds an HTTP+SSE session outlives its closed stream (its client cannot resume).
    legacy_grace: float = 30.0
    #: Persist the last-activity time at most this often (expiry may start this much
    #: early after a crash, never late).
    seen_every: float = 60.0
    streams: StreamLimits = StreamLimits()
    #: Resource subscriptions one session may hold.
    max_subscriptions: int = 1000
    #: Bytes one live connection may queue for a client that is not reading; past it the
    #: connection is closed (its events stay in the log for ``Last-Event-ID``).
    max_buffer: int = 1024 * 1024
    #: Sessions that may exist at once (live or hibernated); past it ``initialize`` gets 503.
    max_sessions: int = 100_000
    #: Seconds a session lives if its client never completes the handshake
    #: (``notifications/initialized``), so a flood of unused initializes expires soon.
    handshake_ttl: float = 60.0


RESTARTED = ("The server restarted while this request was running, so its result is lost; "
             "call it again")


class PendingRecord(msgspec.Struct, array_like=True):
    """A request we sent the client, stored under ``p/<id>`` until answered or timed out."""

    method: str
    stream: int
    deadline: float


_encode = msgspec.json.Encoder().encode
_decode_pending = msgspec.json.Decoder(PendingRecord).decode


def _cancelled(request_id: int, reason: str) -> bytes:
    return jsonrpc.notification(spec.CANCELLED, {"requestId": request_id, "reason": reason})


class SessionActor:
    """One session's actor. Constructed fresh, or woken from storage with identical state."""

    # Slots: an idle live session should cost little memory (bench target: 2 KB).
    __slots__ = ("app", "storage", "config", "lifetimes", "session", "log", "connections", "tasks",
                 "waiters", "closed", "ended", "last_active", "alarm_at", "directory", "task_streams")

    def __init__(self, session_id: str, app: Any, storage: Storage, config: HttpConfig,
                 lifetimes: Lifetimes | None = None, fresh: bool = False, directory: Any = None):
        """``fresh``: a session being created (nothing to read back from storage);
        ``directory``: where its 2025-11-25 tasks live (a TaskDirectory; None: no tasks)."""
        self.app = app
        self.directory = directory
        #: Streams of tasks/result requests waiting, by task: where a task's questions go
        #: (None until one waits).
        self.task_streams: dict[str, Stream] | None = None
        self.storage = storage
        self.config = config
        self.lifetimes = lifetimes or Lifetimes()
        self.session = Session(session_id, storage, fresh)
        self.log = EventLog(storage, self.lifetimes.streams, fresh=fresh)
        self.connections: dict[int, Connection] = {}
        self.tasks: dict[RequestId, tuple[asyncio.Task, Context]] = {}
        self.waiters: dict[int, asyncio.Future] = {}
        self.closed = False
        #: The session is over (DELETE or expiry) and its storage deleted.
        self.ended = False
        # Woken from storage, the clock starts at the last activity written down: being
        # woken (by an alarm, say) is not activity.
        self.last_active = self.session.state.last_seen or time.time()
        #: When the storage alarm is set for (mirrored, so arming it costs no read).
        self.alarm_at: float | None = None if fresh else storage.get_alarm()
        if self.session.restored:
            self._recover()

    def _recover(self) -> None:
        """Waking from storage: nothing of ours can be running, so whatever was running died.

        Each unfinished request stream ends with an error response, so a client that
        resumes it gets an answer instead of waiting forever; requests we had sent to the
        client are forgotten (their handlers are gone).
        """
        now = time.time()
        pending = self.storage.list("p/")
        for key, raw in pending:
            record = _decode_pending(raw)
            stream = self.log.streams.get(record.stream)
            if stream is not None and not stream.finished and record.deadline > now:
                # The client may still be asking its user: tell it the question is void.
                self.log.append(stream, _cancelled(int(key[2:]), "the server restarted; the request that "
                                                                   "asked this is over"))
        for stream in self.log.orphans():
            if stream.request_id is not None:
                self.log.append(stream, jsonrpc.error(stream.request_id, spec.INTERNAL_ERROR, RESTARTED))
            self._finish(stream, delivered=False)
        if pending:
            self.storage.delete_prefix("p/")
        if self.session.legacy:  # its stream died with the process, and cannot be resumed
            self._set_alarm(now + self.lifetimes.legacy_grace, earlier_only=False)

    def _set_alarm(self, at: float, earlier_only: bool = True) -> None:
        """Arm the storage alarm for ``at`` (only if that is earlier than the one set, with
        ``earlier_only``); :meth:`alarm` re-arms it for whatever is due next."""
        if earlier_only and self.alarm_at is not None and self.alarm_at <= at:
            return
        self.alarm_at = at
        self.storage.set_alarm(at)

    def _finish(self, stream: Stream, delivered: bool) -> None:
        """End a stream; its retention (the grace of a delivered one) is kept by the alarm."""
        due = self.log.finish(stream, delivered)
        if due is not None:
            self._set_alarm(due)

    def arm(self, transport: str = spec.TRANSPORT_STREAMABLE, owner: str = "") -> None:
        """A new session: its transport, its owner (the principal that opened it, when the
        server checks tokens) and its expiry alarm (soon, until the handshake completes). The
        state is written by what comes next in the same tick (``initialize``, or opening the
        HTTP+SSE stream)."""
        self.session.state.transport = transport
        self.session.state.owner = owner
        self.session.state.last_seen = self.last_active
        self._set_alarm(self.last_active + min(self.lifetimes.session_ttl, self.lifetimes.handshake_ttl),
                        earlier_only=False)

    def touch(self) -> None:
        now = time.time()
        self.last_active = now
        if now - self.session.state.last_seen >= self.lifetimes.seen_every:
            self.session.state.last_seen = now
            self.session.save()

    def idle(self, now: float) -> bool:
        """Nothing in flight and quiet for ``idle_evict`` seconds: fit to leave memory."""
        return (not self.connections and not self.tasks and not self.waiters
                and now - self.last_active >= self.lifetimes.idle_evict)

    def hibernate(self) -> None:
        """Write down the last activity; everything else is in storage already."""
        if self.session.state.last_seen < self.last_active:
            self.session.state.last_seen = self.last_active
            self.session.save()

    async def alarm(self, now: float | None = None) -> bool:
        """The storage alarm fired: expire the session, or tidy up and re-arm. True = expired."""
        now = time.time() if now is None else now
        if self.connections or self.tasks or self.waiters:
            self.last_active = max(self.last_active, now)  # a listening client or running work is activity
        last = max(self.last_active, self.session.state.last_seen)
        ttl = self.lifetimes.session_ttl
        if not self.session.operating:
            ttl = min(ttl, self.lifetimes.handshake_ttl)  # never got past its handshake
        if self.session.legacy and GET_STREAM not in self.connections:
            ttl = min(ttl, self.lifetimes.legacy_grace)  # its stream is gone for good
        if now - last >= ttl:
            return True
        next_at = last + ttl
        due = self.log.expire(now)
        if due is not None:
            next_at = min(next_at, due)
        self._set_alarm(next_at, earlier_only=False)
        await self.flush()
        return False

    # -- input: a routed HTTP request ----------------------------------------------------

    async def serve(self, route: Route, msg: Message | None) -> Reply:
        """Do what ``route`` (from :mod:`engine.router`) asks of this session.

        The runtime found or created this actor; everything after that is here, once, for
        every runtime.
        """
        action = route.action
        if action not in (router.OPEN, router.LEGACY_OPEN) and self.session.state.owner != owner_of(route.principal):
            # Another principal's session (or a principal's where the server had none): as if
            # it did not exist, so a leaked id reads no stream and answers no question.
            raise http.session_not_found(self.session.id, msg)
        if action == router.OPEN:
            reply = await self.post(msg, route.principal)  # type: ignore[arg-type]
            if not self.session.ready:  # initialize failed: no session comes of it
                self.end()
                return reply
            return Reply(reply.status, reply.content_type, reply.body, reply.connection,
                         ((spec.HEADER_SESSION_ID, self.session.id),))
        if action == router.LEGACY_OPEN:
            return await self.open_legacy_stream(
                f"{route.endpoint}?{spec.LEGACY_SESSION_PARAM}={self.session.id}")
        if self.session.state.transport != route.transport:
            raise legacy_session_mismatch(self.session.state.transport)
        if action == router.LISTEN:
            return await self.get(route.last_event_id)
        if action == router.END:
            self.end()
            # Durable before the 204 says so: a crash must not bring the session back, and
            # another process must not load it from what the store still held.
            await self.storage.flush()
            return Reply(204, None)
        return await self.post(msg, route.principal)  # type: ignore[arg-type]

    # -- input: POST ---------------------------------------------------------------------

    async def post(self, msg: Message, principal: Principal | None = None) -> Reply:
        self.touch()
        kind = jsonrpc.kind(msg)
        if kind == jsonrpc.REQUEST:
            return await self._request(msg, principal)
        if kind == jsonrpc.NOTIFICATION:
            self._notification(msg)
        else:
            self._response(msg)
        return ACCEPTED

    async def _request(self, msg: Message, principal: Principal | None = None) -> Reply:
        rid: RequestId = msg.id  # type: ignore[assignment]
        method: str = msg.method  # type: ignore[assignment]
        params = msg.params if msg.params is not UNSET else {}
        if self.session.legacy:
            return await self._legacy_request(rid, method, params, principal)
        sse_reply = not self.config.json_response and method != spec.INITIALIZE
        try:
            self.session.begin(rid, method)
        except ProtocolError as exc:
            return await self._immediate(jsonrpc.error(rid, exc.code, exc.message), sse_reply)
        if not sse_reply:
            # JSON replies: messages related to the request can only go on the GET stream.
            # initialize says nothing on its way: no GET stream is made for it (None means that stream)
            ctx = Context(self, rid, params, None if method == spec.INITIALIZE else self.log.get_stream, principal)
            payload = self._start(ctx, method)
            if payload is None:
                task, _ = self.tasks[rid]
                await asyncio.wait((task,))
                # A JSON reply must carry one message; for a cancelled request (which
                # gets no response) that is an error the client, having cancelled, ignores.
                payload = jsonrpc.error(rid, spec.REQUEST_CANCELLED, "Request cancelled by the client") \
                    if task.cancelled() else task.result()
            else:
                self.session.end(rid)
            await self.flush()
            return Reply(200, spec.CONTENT_JSON, payload) if payload else ACCEPTED
        stream = self.log.open(rid)
        ctx = Context(self, rid, params, stream, principal)
        payload = self._start(ctx, method)
        if payload is not None:
            self.session.end(rid)
            head = self._prime(stream, store=False) + self.log.append(stream, payload)
            self._finish(stream, delivered=True)
            await self.flush()
            return Reply(200, spec.CONTENT_SSE, head)
        self.log.persist(stream)
        # Registered before any await: whatever the task emits from here on is queued on it.
        conn = self._connect(stream.id)
        head = self._prime(stream)
        await self.flush()
        return Reply(200, spec.CONTENT_SSE, head, conn)

    async def _legacy_request(self, rid: RequestId, method: str, params: dict,
                              principal: Principal | None = None) -> Reply:
        """HTTP+SSE: the POST gets 202 and everything, the response too, goes on the stream."""
        stream = self.log.get_stream
        try:
            self.session.begin(rid, method)
        except ProtocolError as exc:
            self.emit(stream, jsonrpc.error(rid, exc.code, exc.message))
        else:
            payload = self._start(Context(self, rid, params, stream, principal), method)
            if payload is not None:
                self.session.end(rid)
                self.emit(stream, payload)
        await self.flush()
        return ACCEPTED

    async def _immediate(self, payload: bytes, sse_reply: bool) -> Reply:
        if not sse_reply:
            return Reply(200, spec.CONTENT_JSON, payload)
        stream = self.log.open(None)
        head = self._prime(stream, store=False) + self.log.append(stream, payload)
        self._finish(stream, delivered=True)
        await self.flush()
        return Reply(200, spec.CONTENT_SSE, head)

    def _prime(self, stream: Stream, store: bool = True) -> bytes:
        if not self.session.primes:
            return b""
        return self.log.prime(stream, self.config.retry_ms, store)

    def _start(self, ctx: Context, method: str) -> bytes | None:
        """Run the handler; the response bytes if it finished inline, else None (a task runs)."""
        handler = SESSION_METHODS.get(method) or self.app.methods.get(method)
        rid = ctx.request_id
        if handler is None:
            return jsonrpc.error(rid, spec.METHOD_NOT_FOUND, f"Method not found: {jsonrpc.shown(method)}")
        span = tracing.start(tracing.HANDLER)
        try:
            result = handler(ctx)
        except Exception as exc:
            tracing.end(span, type(exc).__name__)
            return _error_payload(rid, exc, method)
        if hasattr(result, "__await__"):
            task = asyncio.get_running_loop().create_task(self._run(rid, result, method))  # inside the span
            # Cleanup runs as a done-callback, not in _run: a cancel that lands before the
            # task's first step never executes _run's body at all.
            task.add_done_callback(lambda t: self._done(ctx, t, result))
            tracing.outlive(span, task)
            self.tasks[rid] = (task, ctx)
            return None
        tracing.end(span)
        return jsonrpc.response(rid, result)

    @staticmethod
    async def _run(rid: RequestId, awaitable: Any, method: str) -> bytes:
        try:
            return jsonrpc.response(rid, await awaitable)
        except Exception as exc:
            return _error_payload(rid, exc, method)

    def _done(self, ctx: Context, task: asyncio.Task, awaitable: Any) -> None:
        rid = ctx.request_id
        self.session.end(rid)
        self.tasks.pop(rid, None)
        if task.cancelled():
            payload = None  # cancellation: the spec says send no response
            if hasattr(awaitable, "close"):
                awaitable.close()  # never started if the cancel came first
        else:
            payload = task.result()
        stream = ctx.stream
        if self.closed:
            return
        if stream is None or stream.id == GET_STREAM:
            # HTTP+SSE: the response goes on the stream; JSON mode: the waiting POST sends it.
            if self.session.legacy and payload is not None:
                self.emit(stream, payload)
            return
        if payload is not None:
            self.emit(stream, payload)
        conn = self.connections.pop(stream.id, None)
        self._finish(stream, delivered=conn is not None)
        if conn is not None:
            conn.close()

    def _notification(self, msg: Message) -> None:
        method = msg.method
        params = msg.params if msg.params is not UNSET else {}
        if method == spec.INITIALIZED:
            self.session.initialized()
        elif method == spec.CANCELLED:
            entry = self.tasks.get(params.get("requestId"))  # type: ignore[arg-type]
            if entry is not None:
                entry[1].cancelled = True
                entry[0].cancel()
        # Other notifications (roots/list_changed, progress for our requests) need no action.

    def _response(self, msg: Message) -> None:
        waiter = self.waiters.pop(msg.id, None)  # type: ignore[arg-type]
        if waiter is None or waiter.done():
            log.info("session %s: response to unknown or expired request %r ignored", self.session.id, msg.id)
            return
        if msg.error is not UNSET:
            err = msg.error
            waiter.set_exception(ClientError(err.code, err.message, None if err.data is UNSET else err.data))
        else:
            waiter.set_result(msg.result)

    # -- input: GET --------------------------------------------------------------------------

    async def get(self, last_event_id: str | None) -> Reply:
        self.touch()
        if last_event_id:
            try:
                stream, frames = self.log.replay(last_event_id)
            except BadEventId as exc:
                raise HttpError(400, spec.INVALID_REQUEST, f"Bad Request: {exc}") from None
            old = self.connections.pop(stream.id, None)
            if old is not None:  # the client resumed on a new connection; the old one is dead to it
                old.close()
            body = b"".join(frames)
            if stream.finished:
                due = self.log.delivered(stream)
                if due is not None:
                    self._set_alarm(due)
                await self.flush()
                return Reply(200, spec.CONTENT_SSE, body)
        else:
            stream = self.log.get_stream
            current = self.connections.get(GET_STREAM)
            if current is not None and not current.closed:
                raise HttpError(
                    409,
                    spec.INVALID_REQUEST,
                    "Conflict: this session already has an open GET stream; close it first, or "
                    "resume it with Last-Event-ID",
                )
            body = self._prime(stream)
        conn = self._connect(stream.id)
        await self.flush()
        return Reply(200, spec.CONTENT_SSE, body, conn)

    async def open_legacy_stream(self, endpoint_url: str) -> Reply:
        """GET on the SSE path: the session's one stream, opening with its ``endpoint`` event."""
        self.session.save()  # the session exists from now on, before any initialize
        conn = self._connect(GET_STREAM)
        await self.flush()
        return Reply(200, spec.CONTENT_SSE, sse.endpoint(endpoint_url), conn)

    def _connect(self, stream_id: int) -> Connection:
        conn = self.connections[stream_id] = Connection(stream_id, self.flush, self._detached,
                                                        self.lifetimes.max_buffer)
        return conn

    def _detached(self, conn: Connection) -> None:
        """A connection's response ended (client went away or we closed it)."""
        if self.connections.get(conn.stream_id) is conn:
            del self.connections[conn.stream_id]
            if self.session.legacy and not self.closed:
                # Its client cannot come back to this stream: end the session after a grace.
                self._set_alarm(time.time() + self.lifetimes.legacy_grace)
        self.last_active = time.time()

    # -- output ---------------------------------------------------------------------------------

    def emit(self, stream: Stream | None, payload: bytes) -> None:
        if self.closed:
            return  # a handler outliving its session writes nothing (the session's data is gone)
        if stream is None:
            stream = self.log.get_stream
        frame = self.log.append(stream, payload)
        conn = self.connections.get(stream.id)
        if conn is not None:
            conn.push(frame)

    # -- the HandlerHost port (what a Context asks of us) -------------------------------------

    modern = False

    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def protocol_version(self) -> str:
        return self.session.state.version

    @property
    def client_info(self) -> dict:
        return self.session.state.client_info

    @property
    def client_capabilities(self) -> dict:
        return self.session.state.client_capabilities

    def logs(self, level: str) -> bool:
        return self.session.logs(level)

    def progress(self, stream: Stream, params: dict) -> None:
        self.emit(stream, jsonrpc.notification(spec.PROGRESS, params))

    def start_task(self) -> None:
        return None  # a 2025-11-25 task starts when it is asked for (params.task)

    # -- what this session's 2025-11-25 tasks ask of it (session_tasks.SessionChannel) ---------

    def task_notify(self, task_id: str, payload: bytes) -> None:
        """A task's notification: on its waiting tasks/result stream, else the GET stream."""
        self.emit(self._task_stream(task_id), payload)

    def _task_stream(self, task_id: str) -> Stream:
        waiting = self.task_streams.get(task_id) if self.task_streams else None
        return waiting or self.log.get_stream

    def task_status(self, task: dict) -> None:
        """A task of this session changed status: notifications/tasks/status on the GET stream."""
        if self.session.ready:
            self.emit(self.log.get_stream, jsonrpc.notification(STATUS_NOTIFICATION_2025, task))

    async def task_request(self, task_id: str, method: str, params: dict | None, timeout: float) -> Any:
        stream = self._task_stream(task_id)
        return await self.request_client(stream, method, params, timeout)

    def close_stream(self, stream: Stream | None) -> None:
        if stream is None or not self.session.primes or stream.finished or stream.id == GET_STREAM:
            return  # only a request's own stream may be closed for polling (not in JSON mode)
        conn = self.connections.pop(stream.id, None)
        if conn is not None:
            conn.push(sse.retry(self.config.retry_ms))
            conn.close(poll=True)

    def close_connections(self) -> None:
        """End every live connection (the process is stopping); streams stay resumable."""
        for conn in list(self.connections.values()):
            conn.push(sse.retry(self.config.retry_ms))
            conn.close(poll=True)
        self.connections.clear()

    def announce(self, method: str, params: dict | None, uri: str | None, seq: int = 0) -> None:
        """An app-wide notification (number ``seq`` of the app's announcement log); sent on
        the GET stream if this session wants it."""
        if seq:
            if seq <= self.session.state.announced:
                return  # heard already (in a cluster, before this process's copy of the log caught up)
            self.session.state.announced = seq  # written with the next save (at the latest, hibernation)
        if not self.session.ready:
            return
        if uri is not None and not self.session.subscribes(uri):
            return
        self.emit(self.log.get_stream, jsonrpc.notification(method, params))

    def catch_up(self, missed: list[tuple[int, str, dict | None, str | None]], gap: bool) -> None:
        """Woken from storage: hear the announcements made while this actor slept, so a
        client resuming its GET stream gets them. ``gap``: some were made but no longer
        kept; then every list may have changed and every subscribed resource may have been
        updated, and the client is told so (a notification too many is harmless, one too
        few is not)."""
        if gap and self.session.ready:
            for kind in ("tools", "resources", "prompts"):
                self.announce(f"notifications/{kind}/list_changed", None, None)
            for uri in list(self.session.subscribed or ()):
                self.announce(spec.RESOURCE_UPDATED, {"uri": uri}, uri)
        for seq, method, params, uri in missed:
            self.announce(method, params, uri, seq)
        if missed or gap:
            self.session.save()

    async def request_client(self, stream: Stream | None, method: str, params: dict | None, timeout: float,
                             key: str | None = None) -> Any:
        if self.closed:
            raise ClientError(spec.INTERNAL_ERROR, "The session was closed")
        if stream is None:
            stream = self.log.get_stream
        rid = self.session.next_server_request_id()
        self.session.save()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[rid] = waiter
        key = f"p/{rid:010d}"
        self.storage.put(key, _encode(PendingRecord(method, stream.id, time.time() + timeout)))
        self.emit(stream, jsonrpc.request(rid, method, params))
        try:
            with tracing.span(method, {"mcp.method.name": method, "jsonrpc.request.id": str(rid)}, "client"):
                return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            # cancellation: the side that gives up on a request says so.
            self.emit(stream, _cancelled(rid, f"no answer within {timeout:g} s"))
            raise ClientError(spec.REQUEST_TIMEOUT,
                              f"The client did not answer {method} within {timeout:g} s") from None
        finally:
            self.waiters.pop(rid, None)
            if not self.closed:
                self.storage.delete(key)

    # -- durability --------------------------------------------------------------------------------

    async def flush(self) -> None:
        """The output gate (rule 3). If the store could not commit, what this actor holds
        in memory is ahead of what storage kept: it closes, and its host wakes a fresh actor
        from storage for the next request (running requests then end as "server restarted")."""
        try:
            with tracing.span(tracing.COMMIT):
                await self.storage.flush()
        except StoreUnavailable:
            if not self.closed:
                log.error("session %s: the store could not commit; reloading it from storage", self.session.id)
                self.close()
            raise

    # -- end -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop this actor's work (process shutdown, or the session ending).

        ``closed`` is set first, so cancelled handlers do not finish their streams: in a
        durable store they stay unfinished, and the next activation ends them with the
        "server restarted" error a resuming client can act on.
        """
        self.closed = True
        for task, _ in list(self.tasks.values()):
            task.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        self.connections.clear()
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(ClientError(spec.INTERNAL_ERROR, "The session was closed"))

    def end(self) -> None:
        """The session is over (DELETE or expiry): stop, and delete everything it stored."""
        self.close()
        self.ended = True
        self.log.drop()
        self.storage.delete_alarm()


# -- the session's own methods ---------------------------------------------------------------
# Methods that change the session, consulted before the app's table (engine.app.dispatch).


def _initialize(ctx: Context) -> dict:
    actor: SessionActor = ctx.host  # type: ignore[assignment]
    app = actor.app
    result: dict[str, Any] = {
        "protocolVersion": actor.session.initialize(ctx.params),
        "capabilities": app.capabilities(modern=False),
        "serverInfo": app.server_info(),
    }
    if app.instructions:
        result["instructions"] = app.instructions
    return result


def _and_the_apps(ctx: Context, method: str) -> Any:
    """After the session's own part: the app's handler for the method too, if it has one
    (an SDK server's own resources/subscribe, say); its answer is the answer."""
    handler = ctx.app.methods.get(method)
    return handler(ctx) if handler is not None else {}


def _set_level(ctx: Context) -> Any:
    ctx.host.session.set_log_level(ctx.params.get("level"))  # type: ignore[attr-defined]
    return _and_the_apps(ctx, "logging/setLevel")


def _subscribe(ctx: Context) -> Any:
    actor: SessionActor = ctx.host  # type: ignore[assignment]
    actor.session.subscribe(str_param(ctx, "uri"), actor.lifetimes.max_subscriptions)
    return _and_the_apps(ctx, "resources/subscribe")


def _unsubscribe(ctx: Context) -> Any:
    ctx.host.session.unsubscribe(str_param(ctx, "uri"))  # type: ignore[attr-defined]
    return _and_the_apps(ctx, "resources/unsubscribe")


SESSION_METHODS: dict[str, Callable[[Context], Any]] = {
    spec.INITIALIZE: _initialize,
    "logging/setLevel": _set_level,
    "resources/subscribe": _subscribe,
    "resources/unsubscribe": _unsubscribe,
    **session_tasks.TASK_METHODS,
}
