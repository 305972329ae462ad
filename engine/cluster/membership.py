"""Who is alive: this process's heartbeat and lease, and its view of the other processes.

Every process has a row in ``nodes`` (its name, the address peers forward to) and beats
it every ``lease / 5`` seconds; the database's clock, not the processes', says how old a
beat is, so clocks that disagree between machines do not matter. Another process may take
over an actor whose holder has not beaten for ``lease`` seconds.

**The lease, from the inside.** A process may serve its actors from memory only while it
is sure nobody took them over: until ``LEASE_USE`` of a lease after the start of its last
heartbeat that the database accepted (the beat's time in the database is later than that
start, so others wait at least a whole lease from it). A process that was paused
(SIGSTOP, a long garbage collection, a VM migration) or cut off from the database finds
its lease lapsed: before it serves or releases anything again, it beats, asks which of its
actors it still holds, and closes the others (:meth:`Membership.renew`). Their clients'
next requests reach the new holder.

**Peers.** Each beat returns every process's row, so the view of who is alive is at most
one beat old; a forward to a peer waits for its answer as long as that peer stays alive in
this view (:meth:`Membership.alive`). Rows of processes dead for ``FORGET_AFTER`` leases are
removed, and their claims with them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Callable

from ..protocol.storage import StoreUnavailable
from .store import PostgresBackend

log = logging.getLogger("engine")

#: The part of a lease, from the start of the last accepted beat, during which this
#: process trusts that it still holds its actors.
LEASE_USE = 0.75
#: Beats per lease.
BEATS_PER_LEASE = 5
#: Leases after which a silent process's row (and its claims) are removed.
FORGET_AFTER = 10
#: Beats between the janitor's rounds (dead rows, the session count).
JANITOR_EVERY = 20


class Peer:
    __slots__ = ("node", "url", "age", "seen", "draining")

    def __init__(self, node: str, url: str, age: float, seen: float, draining: bool):
        self.node = node
        self.url = url
        #: Seconds since its last beat, as the database said at ``seen`` (our monotonic clock).
        self.age = age
        self.seen = seen
        self.draining = draining


class Membership:
    def __init__(self, backend: PostgresBackend, url: str, lease: float, count: Callable[[int], None] = lambda n: None):
        """``url``: where peers reach this process; ``count``: given the number of sessions
        in the database now and then. (Actors found lost are the backend's ``on_lost``.)"""
        self.backend = backend
        self.url = url
        self.lease = lease
        self.count = count
        self.peers: dict[str, Peer] = {}
        self._valid_until = 0.0
        self._renewing: asyncio.Future | None = None
        self._loop_task: asyncio.Task | None = None
        self.beats = 0
        self.lapses = 0
        backend.use_lease(self.ok, self.renew)

    @property
    def node(self) -> str:
        return self.backend.node

    # -- the lease --------------------------------------------------------------------------

    def ok(self) -> bool:
        return time.monotonic() < self._valid_until

    async def join(self) -> None:
        await self.backend.register(self.url, socket.gethostname(), os.getpid())
        await self.backend.reserve_epochs()
        await self.renew()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def renew(self) -> None:
        """Beat now; if the lease had lapsed, find out what this process still holds first.
        One renewal at a time: others wait for it. Raises StoreUnavailable if the database
        cannot be reached."""
        if self._renewing is not None:
            return await asyncio.shield(self._renewing)
        future = self._renewing = asyncio.get_running_loop().create_future()
        try:
            await self._beat()
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._renewing = None

    async def _beat(self) -> None:
        started = time.monotonic()
        lapsed = started >= self._valid_until and self.beats > 0
        rows = await self.backend.beat()
        now = time.monotonic()
        if not any(node == self.node for node, *_ in rows):  # taken for dead, and forgotten
            log.warning("cluster: this process was taken for dead; joining again")
            await self.backend.register(self.url, socket.gethostname(), os.getpid())
            lapsed = True
        if lapsed:
            self.lapses += 1
            held = await self.backend.still_held()
            lost = self.backend.fence(name for name in list(self.backend.spaces) if name not in held)
            if lost:
                log.warning("cluster: the lease lapsed and %d actors were taken over meanwhile; they are closed "
                            "here", len(lost))
        self._valid_until = started + self.lease * LEASE_USE
        self.peers = {node: Peer(node, url, age, now, draining) for node, url, age, draining in rows}
        self.beats += 1

    async def _run(self) -> None:
        interval = self.lease / BEATS_PER_LEASE
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
                if self.beats % JANITOR_EVERY == 0:
                    gone = await self.backend.forget_dead(self.lease * FORGET_AFTER)
                    if gone:
                        log.info("cluster: forgot %d processes that stopped beating", gone)
                    self.count(await self.backend.count("meta"))
                await self.backend.reserve_epochs()
                if failing:
                    log.warning("cluster: the database answers again")
                    failing = False
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                if not failing:
                    log.error("cluster: heartbeats are failing (%s); actors here wait for the database", exc)
                failing = True
            except Exception:
                log.exception("cluster: heartbeat failed")

    # -- peers ----------------------------------------------------------------------------

    def alive(self, node: str) -> bool:
        """Whether ``node`` was alive at its last beat we know of, counting the time since."""
        if node == self.node:
            return True
        peer = self.peers.get(node)
        return peer is not None and peer.age + (time.monotonic() - peer.seen) < self.lease

    def expires_in(self, node: str) -> float:
        """Seconds until ``node``'s lease runs out, as far as this process knows (0: already)."""
        peer = self.peers.get(node)
        if peer is None:
            return 0.0
        return max(0.0, self.lease - peer.age - (time.monotonic() - peer.seen))

    # -- leaving ----------------------------------------------------------------------------

    async def draining(self) -> None:
        await self.backend.set_draining()

    async def leave(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except (asyncio.CancelledError, Exception):
                pass
            self._loop_task = None
        try:
            await self.backend.unregister()
        except StoreUnavailable as exc:
            log.warning("cluster: could not say goodbye (%s); peers take over after the lease", exc)
