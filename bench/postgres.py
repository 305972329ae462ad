"""A private PostgreSQL 15 server for tests and benchmarks: ``with PostgresServer() as pg: pg.url``.

Each server has its own temp folder (data dir, log), listens only on 127.0.0.1 on a free port,
keeps its unix socket in its data dir (not /var/run/postgresql) and trusts local connections.
The superuser is ``postgres``; the database ``mcp`` exists when start() returns.

Why a template: initdb and CREATE DATABASE cost a second or two, and tests start several
servers. The first start on the machine builds an initialized data dir under the temp dir
(keyed by uid and version; under an fcntl lock; renamed into place whole); every server copies
it with ``cp -a`` (owner and 0700 mode kept), so a start costs the copy and the postmaster's start.

Why another user: PostgreSQL refuses to run as root, so as root initdb and postgres run as
``postgres`` (subprocess's user=/group=: set in the forked child, no preexec_fn, thread-safe)
and the temp folder is chowned to it.

Why not ``pg_ctl start``: pg_ctl orphans the postmaster to pid 1, which here reaps only every
~2 s; until then the dead postmaster's pid in postmaster.pid fails the next start after kill()
("lock file already exists"). So the postmaster is our child, in its own process group;
start() waits as ``pg_ctl -w`` does (postmaster.pid says "ready"), stop() signals it as
``pg_ctl stop -m MODE`` does, and kill() SIGKILLs the group (postmaster and backends): a crash,
after which start() runs crash recovery on the same data."""

from __future__ import annotations

import contextlib
import itertools
import fcntl
import functools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .servers import free_port, stop_group

BIN_DIR = Path("/usr/lib/postgresql/15/bin")


_databases = itertools.count(1)


class PostgresMissing(RuntimeError):
    """PostgreSQL 15 (or an unprivileged user to run it as root) is not there: tests may skip."""


def _bin(name: str) -> str:
    found = BIN_DIR / name if (BIN_DIR / name).exists() else shutil.which(name)
    if not found:
        raise PostgresMissing(f"PostgreSQL 15's {name} is not in {BIN_DIR} nor on PATH: install the Debian "
                              f"package postgresql-15 (apt-get install postgresql)")
    return str(found)


def _runas() -> dict:
    """subprocess arguments to run PostgreSQL's programs as someone who is not root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing("running as root, PostgreSQL needs an unprivileged user 'postgres' to run as, "
                              "and there is none (apt-get install postgresql creates it)") from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run(cmd: list[str], timeout: float = 60, **kw) -> str:
    ran = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/", **_runas(), **kw)
    if ran.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({ran.returncode}): {(ran.stderr or ran.stdout)[-2000:]}")
    return ran.stdout


def _chown(path: Path) -> None:
    if runas := _runas():
        os.chown(path, runas["user"], runas["group"])


@functools.cache
def _version() -> str:
    return _run([_bin("postgres"), "--version"]).split()[2]  # "postgres (PostgreSQL) 15.18 (Debian ...)"


def template(dbname: str = "mcp") -> Path:
    """The initialized data dir every server copies, built once (per uid and version)."""
    path = Path(tempfile.gettempdir()) / f"mcp-actors-pg-template-{os.getuid()}-{_version()}-{dbname}"
    if path.is_dir():
        return path
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_dir():
            return path
        build = Path(tempfile.mkdtemp(prefix=f"{path.name}.build-", dir=path.parent))
        try:
            _chown(build)
            data = build / "data"
            _run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync"], timeout=120)
            _run([_bin("postgres"), "--single", "-D", str(data), "-F", "postgres"],
                 input=f'CREATE DATABASE "{dbname}";\n')
            os.rename(data, path)  # atomic: a template is either whole or absent
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return path


class PostgresServer:
    """``settings``: extra postgresql.conf lines ({"synchronous_commit": "off"}); ``keep``: leave
    the temp folder on stop(); ``dir``: where to make it (default the temp dir; "/dev/shm" copies
    the template faster and makes fsync free: file creation is slow on some disks)."""

    def __init__(self, settings: dict[str, str] | None = None, dbname: str = "mcp", keep: bool = False,
                 dir: str | None = None):
        self.settings, self.dbname, self.user, self.keep, self.dir = dict(settings or {}), dbname, "postgres", keep, dir
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port, self._new = 0, False

    @property
    def datadir(self) -> Path | None:
        return self.tmpdir / "data" if self.tmpdir else None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def logfile(self) -> Path | None:
        return self.tmpdir / "postgres.log" if self.tmpdir else None

    def _fresh(self) -> None:
        """A new temp folder with a copy of the template, configured on a new free port."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        source = template(self.dbname)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mcp-actors-pg-", dir=self.dir))
        subprocess.run(["cp", "-a", str(source), str(self.datadir)], check=True)
        _chown(self.tmpdir)
        self.port, self._new = free_port(), True
        conf = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                "unix_socket_directories": str(self.datadir), **self.settings}
        with open(self.datadir / "postgresql.conf", "a") as f:  # later lines win
            f.write("\n# mcp-actors bench/postgres.py\n")
            f.writelines(f"{k} = '{str(v).replace(chr(39), chr(39) * 2)}'\n" for k, v in conf.items())

    def start(self, timeout: float = 60) -> "PostgresServer":
        """Start the server (a fresh copy of the template the first time, else the same data) and
        wait until it accepts connections, as ``pg_ctl -w`` does: postmaster.pid says "ready"."""
        for attempt in range(3):
            if self.tmpdir is None or not self.datadir.is_dir():
                self._fresh()
            if self.running():
                return self
            with open(self.logfile, "ab") as log:
                self.proc = subprocess.Popen([_bin("postgres"), "-D", str(self.datadir)], cwd="/", stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, **_runas())
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    lines = (self.datadir / "postmaster.pid").read_text().splitlines()
                except OSError:
                    lines = []
                if len(lines) >= 8 and lines[0] == str(self.proc.pid) and lines[7].strip() == "ready":
                    self._new = False
                    return self
                time.sleep(0.01)
            stop_group(self.proc)
            if self._new and attempt < 2 and "could not bind" in self.log_text():
                self._fresh()  # someone took the free port meanwhile: a new copy on another one
                continue
            raise RuntimeError(f"PostgreSQL did not start (exit {self.proc.returncode}):\n{self.log_text()[-3000:]}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _shutdown(self, mode: str) -> None:
        if self.running():
            os.kill(self.proc.pid, {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_group(self.proc)  # SIGTERM to the backends too, then SIGKILL

    def stop(self, mode: str = "fast") -> None:
        """Stop (mode: smart, fast or immediate, as pg_ctl stop -m) and remove the temp folder
        unless keep. Idempotent."""
        self._shutdown(mode)
        if self.tmpdir is not None and not self.keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def restart(self) -> "PostgresServer":
        """Stop cleanly and start again: same port, same data."""
        self._shutdown("fast")
        return self.start()

    def stop_for(self, seconds: float) -> threading.Thread:
        """Stop now (fast) and start again, on the same port and data, ``seconds`` later (in a
        thread: the caller goes on meanwhile); the thread, to join."""
        self._shutdown("fast")

        def later() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=later, daemon=True)
        thread.start()
        return thread

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (its process group): a crash. Data stays."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def psql(self, sql: str, timeout: float = 60) -> str:
        """Run SQL (one or more statements) through psql; its stdout, unaligned, tuples only."""
        ran = subprocess.run([_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-f", "-"],
                             input=sql, capture_output=True, text=True, timeout=timeout)
        if ran.returncode != 0:
            raise RuntimeError(f"psql failed ({ran.returncode}): {ran.stderr.strip()}")
        return ran.stdout

    def new_database(self) -> str:
        """A fresh, empty database on this server (a test's own); its URL."""
        name = f"t{os.getpid()}_{next(_databases)}"
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def log_text(self) -> str:
        """The server's log (stdout and stderr of the postmaster)."""
        return self.logfile.read_text(errors="replace") if self.logfile and self.logfile.exists() else ""

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def selftest() -> None:
    t = time.monotonic()
    with PostgresServer({"synchronous_commit": "off", "max_connections": "50"}) as pg:
        print(f"started in {time.monotonic() - t:.2f}s: {pg.url} (data {pg.datadir})")
        assert pg.psql("SELECT 1").strip() == "1"
        assert pg.psql("SHOW max_connections").strip() == "50"
        pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (42);")
        port, t = pg.port, time.monotonic()
        pg.restart()
        print(f"restarted in {time.monotonic() - t:.2f}s")
        assert pg.port == port and pg.psql("SELECT x FROM t").strip() == "42"
        pg.kill()
        assert not pg.running()
        t = time.monotonic()
        pg.start()
        print(f"started after kill (crash recovery) in {time.monotonic() - t:.2f}s")
        assert pg.psql("SELECT x FROM t").strip() == "42"
        tmpdir = pg.tmpdir
    assert not tmpdir.exists() and not pg.running()
    pg.stop()  # idempotent
    print("postgres self-test passed")


if __name__ == "__main__":
    selftest()
