"""The Worker under ``wrangler dev`` (the real workerd runtime), for the Worker tier of the
tests and the bench's Worker scenario.

Without internet, workerd cannot download Cloudflare's Python runtime; when
``../shared/tools/workerd-offline/setup`` exists, its exports are applied first (it builds
the runtime from the npm ``pyodide`` package and puts a Node >= 22 on PATH).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .servers import stop_group

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
OFFLINE_SETUP = ROOT.parent / "shared" / "tools" / "workerd-offline" / "setup"

_env_cache: dict = {}


def available() -> bool:
    return (NODE_MODULES / "wrangler").exists()


def environment() -> dict:
    """The environment wrangler dev runs in: ours, plus workerd-offline's exports if present."""
    if "env" not in _env_cache:
        env = dict(os.environ)
        if OFFLINE_SETUP.exists():
            out = subprocess.run(["bash", "-c", f'eval "$("{OFFLINE_SETUP}" "{ROOT}")" && env -0'],
                                 capture_output=True, timeout=900, check=True)
            env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
        env["WRANGLER_SEND_METRICS"] = "false"
        env["WRANGLER_LOG"] = "debug"  # the log then names the user worker's own address
        _env_cache["env"] = env
    return _env_cache["env"]


def vendor(*args: str) -> None:
    """``worker/vendor.sh`` with this interpreter's pip (``--mcp 2`` adds the SDK)."""
    subprocess.run([str(ROOT / "worker" / "vendor.sh"), *args], cwd=ROOT, check=True, timeout=900,
                   env={**os.environ, "PIP": str(Path(sys.executable).parent / "pip")},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def floor_root() -> Path:
    """A folder holding the Python Worker floor (bench/peers/worker_floor) with the Workers
    SDK from the project's vendored python_modules/ (run :func:`vendor` first)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mcp-actors-worker-floor-"))
    for name in ("wrangler.toml", "entry.py"):
        shutil.copy(ROOT / "bench" / "peers" / "worker_floor" / name, root / name)
    modules = root / "python_modules"
    modules.mkdir()
    for item in (ROOT / "python_modules").iterdir():
        if item.name.startswith(("workers", "_workers_sdk", "_pyodide", "_cloudflare")):
            (shutil.copytree if item.is_dir() else shutil.copy)(item, modules / item.name)
    return root


def probe_root() -> Path:
    """A copy of the engine's Worker (worker/ and the vendored python_modules/) whose main
    module is bench/peers/worker_floor/import_probe.py: it times the Worker's imports."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mcp-actors-import-probe-"))
    floor = ROOT / "bench" / "peers" / "worker_floor"
    config = (floor / "wrangler.toml").read_text().replace('main = "entry.py"', 'main = "import_probe.py"')
    (root / "wrangler.toml").write_text(config)
    shutil.copy(floor / "import_probe.py", root / "import_probe.py")
    for item in (ROOT / "worker").glob("*.py"):
        shutil.copy(item, root / item.name)
    shutil.copytree(ROOT / "python_modules", root / "python_modules", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Wrangler:
    """A ``wrangler dev`` subprocess serving one app, restartable on the same state."""

    def __init__(self, app: str, state_dir: str, secret: str = "", variables: dict | None = None,
                 root: Path = ROOT):
        """``secret``: SESSION_SECRET; ``variables``: more Worker variables (``{"AUTH_ISSUER": ...}``);
        ``root``: the folder with the wrangler.toml to run (the project's by default)."""
        self.root = root
        self.app = app
        self.state_dir = state_dir
        self.secret = secret
        self.variables = variables or {}
        self.port = _free_port()
        self.proxy_url = f"http://127.0.0.1:{self.port}/mcp"
        self.url = self.proxy_url
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(state_dir) / "wrangler.log"
        #: From the last start to its first answer: wall seconds, and workerd's CPU seconds
        #: (the runtime's boot and the Worker's top-level import included).
        self.startup_seconds = self.startup_cpu = 0.0
        self.start()

    def start(self) -> None:
        cmd = ["npx", "wrangler", "dev", "--ip", "127.0.0.1", "--port", str(self.port),
               "--persist-to", self.state_dir, "--var", f"MCP_APP:{self.app}", "--var", "MCP_ACTORS_TEST_HOOKS:1"]
        if self.secret:
            cmd += ["--var", f"SESSION_SECRET:{self.secret}"]
        for name, value in self.variables.items():
            cmd += ["--var", f"{name}:{value}"]
        log = open(self.log_path, "ab")
        logged = log.tell()
        if self.root != ROOT:
            cmd[0:2] = [str(NODE_MODULES / ".bin" / "wrangler")]
        began = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=environment(), start_new_session=True,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler dev exited:\n{self.log()[-3000:]}")
            try:
                httpx.get(self.proxy_url.replace("/mcp", "/"), timeout=2)
                self.startup_seconds, self.startup_cpu = time.monotonic() - began, self.workerd_cpu()
                self.url = self._user_worker_url(logged)
                return
            except httpx.TransportError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"wrangler dev did not answer:\n{self.log()[-3000:]}")

    def _user_worker_url(self, logged: int) -> str:
        """The address workerd serves the Worker on, behind wrangler's ProxyWorker.

        Requests go there directly, as Cloudflare's edge would send them: one hop fewer, and
        what the Worker does to a connection is seen as it is. The ProxyWorker hid it as a
        500 "Network connection lost" now and then under load (seen as wrangler dev's
        defect, cloudflare/workers-sdk #4561, #15317); going direct showed the cause: workerd
        closes a connection whose request body the Worker did not read, which the Worker now
        does (``worker/entry.py``, ``_drain``). The address changes on each start, so it is
        read from this start's part of the log; if wrangler stops logging it, the proxied
        address is used."""
        with open(self.log_path, "rb") as f:
            f.seek(logged)
            found = re.findall(rb'"userWorkerUrl":(\{[^}]*\})', f.read())
        if not found:
            return self.proxy_url
        where = json.loads(found[-1])
        return f"{where['protocol']}//{where['hostname']}:{where['port']}/mcp"

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL if it lingers."""
        stop_group(self.proc, grace=15)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def workerd_cpu(self) -> float:
        """CPU seconds (user + system) the workerd processes of this run have used."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    head, _, rest = f.read().rpartition(")")
                fields = rest.split()
                if "workerd" in head and int(fields[2]) == self.proc.pid:  # field 5: the process group
                    total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, ValueError, IndexError):
                continue
        return total
