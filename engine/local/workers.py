"""``--workers N``: N processes serving one listening socket, so one machine uses its cores.

The parent binds the port, then forks the workers; on Linux each listens on a socket of its
own in the port's SO_REUSEPORT group and the kernel spreads new connections among them
(elsewhere they share the parent's socket; see ``engine.cli._listen`` for why). Each worker is a full engine process
with a heartbeat and an internal endpoint of its own: together they are a cluster over the
shared PostgreSQL store, exactly as if they ran on separate machines (a request for a
session another worker holds is sent on to it).

The parent only supervises: a worker that dies is started again (after a pause that grows
while they keep dying, so a broken app does not spin), and SIGTERM or SIGINT is passed on
to every worker, which drains and exits; the parent waits for them, then kills any still
there after ``grace`` seconds. Fork rather than uvicorn's own supervisor: uvicorn starts
each worker as a fresh interpreter and pickles its configuration to it, which cannot carry
the configured protocol class and app object; a fork shares them as they are.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable

#: Seconds between restarts of a worker that keeps dying (doubling up to the last).
RESTART_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


def supervise(count: int, run: Callable[[int], None], grace: float) -> int:
    """Run ``run(i)`` in ``count`` forked workers until SIGTERM/SIGINT; returns the exit code."""
    children: dict[int, int] = {}
    deaths: dict[int, int] = {}
    stopping: list[int] = []

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = 0
            try:
                run(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
                if exc.code and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr, flush=True)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index

    def stop(sig: int, _frame: object) -> None:
        stopping.append(sig)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        start(index)
    restarts: list[tuple[float, int]] = []
    deadline = None
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if stopping and deadline is None:
                deadline = time.monotonic() + grace
            if deadline is not None and time.monotonic() > deadline:
                for child in list(children):
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            now = time.monotonic()
            for due, index in [r for r in restarts if r[0] <= now]:
                restarts.remove((due, index))
                if not stopping:
                    start(index)
            time.sleep(0.05)
            continue
        index = children.pop(pid)
        if stopping:
            continue
        deaths[index] = deaths.get(index, 0) + 1
        pause = RESTART_PAUSES[min(deaths[index], len(RESTART_PAUSES)) - 1]
        print(f"worker {index} (pid {pid}) exited with {os.waitstatus_to_exitcode(status)}; starting it again in "
              f"{pause:g} s", file=sys.stderr, flush=True)
        restarts.append((time.monotonic() + pause, index))
        if not children:  # keep waiting for the restart
            time.sleep(pause)
            for due, idx in list(restarts):
                restarts.remove((due, idx))
                start(idx)
    return 0
