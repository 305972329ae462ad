"""A cluster for tests: engine processes over one PostgreSQL database, behind a real nginx.

Each process is a ``python -m engine serve`` subprocess (``conftest.Server``) with
``--store postgresql://...`` and a short lease; nginx balances them round-robin (or by
``Mcp-Session-Id``). :class:`Cluster` can stop, kill, pause and restart any of them on its
own port, and read the database (who holds what) through psql.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from bench.nginx import Nginx
from conftest import Server

#: A lease short enough that takeovers fit in a test, long enough for a loaded CI machine.
LEASE = 2.0


def sql(database: str, query: str) -> list[list[str]]:
    """The rows ``query`` returns in ``database`` (a URL), each a list of column texts."""
    ran = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-d", database, "-c", query],
                         capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    return [line.split("\t") for line in ran.stdout.splitlines() if line]


class Cluster:
    def __init__(self, postgres, database: str, count: int = 3, app: str | None = None, *extra: str,
                 lease: float = LEASE, hash_header: str | None = None):
        self.postgres = postgres
        self.database = database
        self.app = app
        self.extra = extra
        self.lease = lease
        self.servers: list[Server] = [self._start() for _ in range(count)]
        self.nginx = Nginx([s.port for s in self.servers], hash_header=hash_header)
        self.url = self.nginx.url + "/mcp"
        self.sse_url = self.nginx.url + "/sse"

    def _start(self, port: int | None = None) -> Server:
        return Server(self.app, "--store", self.database, "--lease", str(self.lease), "--log-level", "info",
                      *self.extra, port=port)

    # -- what a test does to its processes ---------------------------------------------------------

    def terminate(self, index: int, timeout: float = 30.0) -> int:
        """SIGTERM, as a deploy does: the process drains and exits; its exit code."""
        proc = self.servers[index].proc
        os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def kill(self, index: int) -> None:
        """kill -9: no drain, no goodbye."""
        proc = self.servers[index].proc
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def pause(self, index: int) -> None:
        os.killpg(self.servers[index].proc.pid, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        os.killpg(self.servers[index].proc.pid, signal.SIGCONT)

    def restart(self, index: int) -> Server:
        """A new process on the same port (after terminate or kill)."""
        old = self.servers[index]
        if old.proc.poll() is None:
            self.terminate(index)
        server = self.servers[index] = self._start(port=old.port)
        server.previous = old  # type: ignore[attr-defined]
        return server

    # -- what the database says ---------------------------------------------------------------------

    def sql(self, query: str) -> list[list[str]]:
        return sql(self.database, query)

    def holder(self, name: str) -> str | None:
        """The port of the process holding ``name`` (a session id), or None."""
        rows = self.sql(f"SELECT n.url FROM mcp_actors.owners o JOIN mcp_actors.nodes n ON n.node = o.node "
                        f"WHERE o.ns = '{name}'")
        if not rows:
            return None
        url = rows[0][0]
        for server in self.servers:
            if server.internal_url() == url:
                return str(server.port)
        return url

    def index_of_holder(self, name: str, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.holder(name)
            for i, server in enumerate(self.servers):
                if str(server.port) == port:
                    return i
            time.sleep(0.05)
        raise AssertionError(f"nobody holds {name}")

    def output(self) -> str:
        return "\n".join(f"--- process {i} (port {s.port})\n{s.output()}" for i, s in enumerate(self.servers)) \
            + f"\n--- nginx\n{self.nginx.log_text()}"

    def stop(self) -> None:
        self.nginx.stop()
        for server in self.servers:
            if server.proc.poll() is None:
                try:
                    os.killpg(server.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            server.stop()
