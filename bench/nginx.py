"""nginx as a reverse proxy in front of several 127.0.0.1 servers, for tests and benchmarks of
MCP Streamable HTTP behind a load balancer: ``with Nginx([p1, p2]) as lb: lb.url``.

All nginx writes (pid file, logs, the five temp paths) is in a temp folder of its own, so it
needs neither root nor /var/lib/nginx, /var/log/nginx or /run (``-e`` moves even the error log
it opens before reading its configuration). It runs in the foreground (``daemon off``) in its
own process group, stopped with servers.stop_group (SIGTERM: fast shutdown).

The proxy suits Streamable HTTP: HTTP/1.1 keep-alive to the upstreams, no buffering nor cache
(Server-Sent Events pass as written), hour-long read/send timeouts (long requests, idle GET
streams), Host passed through, a 2 s connect timeout. Kept-alive upstream connections are
dropped by nginx after 4 s idle, before the engine's ``--idle-timeout`` (5 s) would close them
under a request nginx just sent. ``proxy_next_upstream error timeout non_idempotent`` (within
10 s, 3 tries): a refused connection, or one an engine closed before answering (a stopping
process closes only connections with no request in flight, so the POST was not read), moves
on to the next upstream; without ``non_idempotent`` nginx answers such a POST 502.
Round-robin; ``hash_header="mcp-session-id"`` pins each session to an upstream instead.

Why ``user root``: a master started as root runs its workers as ``nobody``, who cannot write
the temp paths in our root-owned 0700 folder (request bodies over client_body_buffer_size
then fail with 500); as root the workers stay root. Not as root the directive is left out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .servers import free_port, stop_group

NGINX = "/usr/sbin/nginx"


def _config(tmp: Path, port: int, upstream_ports: list[int], hash_header: str | None, workers: int) -> str:
    balance = f"hash $http_{hash_header.lower().replace('-', '_')} consistent;" if hash_header else ""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstream_ports)
    temps = "\n".join(f"    {kind}_temp_path {tmp}/{kind}_temp;" for kind in
                      ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{'user root root;' if os.geteuid() == 0 else ''}
daemon off;
master_process on;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    log_format upstreams '$request_method $status $upstream_addr';
    access_log {tmp}/access.log upstreams;
{temps}
    upstream mcp {{
        {balance}
{servers}
        keepalive 32;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 8m;
        client_body_buffer_size 1m;  # MCP requests stay in memory (beyond it: client_body_temp)
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_timeout 10s;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


class Nginx:
    """Started on construction; ``url``, ``reload([ports])``, ``stop()``, ``log_text()``; a context
    manager. ``keep``: leave the temp folder (config, logs) on stop()."""

    def __init__(self, upstream_ports: list[int], port: int | None = None, hash_header: str | None = None,
                 workers: int = 1, keep: bool = False):
        if not os.path.exists(NGINX):
            raise RuntimeError(f"{NGINX} is missing: install the Debian package nginx (apt-get install nginx)")
        self.upstream_ports, self.hash_header = list(upstream_ports), hash_header
        self.workers, self.keep = workers, keep
        self.port, self._any_port = port or free_port(), port is None
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mcp-actors-nginx-"))
        self.conf = self.tmpdir / "nginx.conf"
        self.proc: subprocess.Popen | None = None
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write(self) -> None:
        self.conf.write_text(_config(self.tmpdir, self.port, self.upstream_ports, self.hash_header, self.workers))
        test = subprocess.run(self._cmd("-t", "-q"), capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx rejects its configuration: {test.stderr.strip()}\n{self.conf.read_text()}")

    def _cmd(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.tmpdir), "-c", str(self.conf), "-e", str(self.tmpdir / "error.log"), *extra]

    def start(self, timeout: float = 10, tries: int = 3) -> "Nginx":
        if self.proc is not None and self.proc.poll() is None:
            return self
        self._write()
        for log in ("error.log", "stderr.log"):
            (self.tmpdir / log).write_bytes(b"")
        with open(self.tmpdir / "stderr.log", "ab") as out:
            self.proc = subprocess.Popen(self._cmd(), cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self._any_port and tries > 1 and "Address already in use" in self.log_text():
                    self.port = free_port()  # taken meanwhile: try another
                    return self.start(timeout, tries - 1)
                raise RuntimeError(f"nginx exited ({self.proc.returncode}): {self.log_text()[-2000:]}")
            try:  # nginx writes its pid file once it has bound the port (it retries a busy one for 2.5 s)
                if (self.tmpdir / "nginx.pid").read_text().strip() == str(self.proc.pid):
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        stop_group(self.proc)
        raise RuntimeError(f"nginx did not listen on {self.port}: {self.log_text()[-2000:]}")

    def reload(self, upstream_ports: list[int] | None = None, timeout: float = 10) -> None:
        """Rewrite the configuration (with new upstreams, if given) and SIGHUP the master; return
        once the old workers have stopped accepting (they finish their requests, SSE streams too)."""
        if upstream_ports is not None:
            self.upstream_ports = list(upstream_ports)
        self._write()
        log = self.tmpdir / "error.log"
        seen = log.stat().st_size if log.exists() else 0
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(log, "rb") as f:
                f.seek(seen)
                if f.read().count(b"gracefully shutting down") >= self.workers:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited on reload: {self.log_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError(f"nginx did not reload: {self.log_text()[-2000:]}")

    def upstreams(self) -> dict[int, int]:
        """How many requests each upstream port answered so far (from the access log)."""
        counts: dict[int, int] = {}
        for line in self.log_text("access").splitlines():
            for addr in line.split(" ", 2)[-1].split(", "):
                port = addr.rpartition(":")[2]
                if port.isdigit():
                    counts[int(port)] = counts.get(int(port), 0) + 1
        return counts

    def log_text(self, which: str = "error") -> str:
        """The error log (with what nginx wrote to stderr), or which="access": the access log."""
        names = ["access.log"] if which == "access" else ["stderr.log", "error.log"]
        paths = [self.tmpdir / name for name in names]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def stop(self) -> None:
        """Stop nginx and remove its temp folder (unless keep). Idempotent."""
        stop_group(self.proc)
        if not self.keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "Nginx":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def selftest() -> None:
    import sys
    import urllib.request

    from .servers import Server

    def get(url: str, session: str | None = None) -> str:
        request = urllib.request.Request(url, headers={"Mcp-Session-Id": session} if session else {})
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.read().decode()

    folders = {name: tempfile.mkdtemp(prefix="mcp-actors-nginx-up-") for name in "ab"}
    ports = [free_port() for _ in folders]

    def serve(name: str) -> Server:  # python -m http.server with a file "who" that says name
        Path(folders[name], "who").write_text(name)
        port = ports["ab".index(name)]
        return Server(f"upstream {name}", [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d",
                                           folders[name], str(port)], port)

    upstreams = []
    try:
        upstreams += [serve("a"), serve("b")]
        t = time.monotonic()
        with Nginx(ports) as lb:
            print(f"nginx up in {time.monotonic() - t:.2f}s at {lb.url}")
            seen = [get(lb.url + "/who") for _ in range(6)]
            print("round-robin:", seen)
            assert set(seen) == {"a", "b"} and all(x != y for x, y in zip(seen, seen[1:])), seen
            lb.reload(ports[1:])
            assert {get(lb.url + "/who") for _ in range(4)} == {"b"}
            lb.reload(ports)
            upstreams[0].stop()  # refused connections go on to the other upstream
            assert {get(lb.url + "/who") for _ in range(6)} == {"b"}
            assert "/who" in lb.log_text("access")
        upstreams[0] = serve("a")
        with Nginx(ports, hash_header="mcp-session-id") as lb:
            for session in ("s1", "s2", "s3"):
                assert len({get(lb.url + "/who", session) for _ in range(6)}) == 1
            assert {get(lb.url + "/who", f"s{i}") for i in range(20)} == {"a", "b"}
        print("nginx self-test passed")
    finally:
        for upstream in upstreams:
            upstream.stop()
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    selftest()
