"""The app's announcements (list changes, resource updates), kept so a session that was
asleep when one was made still hears it.

An announcement reaches the sessions in memory at once. Every session also remembers the
number of the last announcement it heard (``SessionState.announced``); an actor woken from
storage catches up from there, onto its GET stream, so a client that resumes that stream
with ``Last-Event-ID`` after a blip receives what happened while its actor slept. The log
keeps the last ``keep`` announcements in its own storage namespace (and in memory, since
every waking actor reads it); a session that slept through more than that hears a
conservative summary instead (see :meth:`engine.actors.session_actor.SessionActor.catch_up`).
"""

from __future__ import annotations

from typing import Union

import msgspec

from ..protocol.storage import Storage

#: The namespace the log lives in; no session id has this shape (ids are 32 characters).
NAMESPACE = "__announcements__"

Entry = tuple[int, str, Union[dict, None], Union[str, None]]


class _Stored(msgspec.Struct, array_like=True):
    method: str
    params: Union[dict, None]
    uri: Union[str, None]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Stored).decode


def _key(seq: int) -> str:
    return f"a/{seq:012d}"


class Announcements:
    __slots__ = ("storage", "keep", "entries", "last")

    def __init__(self, storage: Storage | None, keep: int = 1000):
        """``storage``: where this process keeps the log; None where the log is kept
        elsewhere (a cluster's database) and this object holds a copy, fed by :meth:`add`."""
        self.storage = storage
        self.keep = keep
        self.entries: list[Entry] = []
        for key, raw in storage.list("a/") if storage is not None else ():
            stored = _decode(raw)
            self.entries.append((int(key[2:]), stored.method, stored.params, stored.uri))
        #: The number of the latest announcement (0: none yet).
        self.last = self.entries[-1][0] if self.entries else 0

    def append(self, method: str, params: dict | None, uri: str | None) -> int:
        """Keep an announcement; returns its number."""
        assert self.storage is not None
        self.add(self.last + 1, method, params, uri)
        self.storage.put(_key(self.last), _encode(_Stored(method, params, uri)))
        return self.last

    def add(self, seq: int, method: str, params: dict | None, uri: str | None) -> None:
        """Announcement number ``seq`` (the next one) into the log."""
        self.last = seq
        self.entries.append((seq, method, params, uri))
        while len(self.entries) > self.keep:
            dropped = self.entries.pop(0)[0]
            if self.storage is not None:
                self.storage.delete(_key(dropped))

    def since(self, heard: int) -> tuple[list[Entry], bool]:
        """The announcements after number ``heard``, and whether some of them are no longer
        kept (a gap the caller must make up for)."""
        if heard >= self.last:
            return [], False
        first = self.entries[0][0] if self.entries else self.last + 1
        missed = [e for e in self.entries if e[0] > heard]
        return missed, heard < first - 1
