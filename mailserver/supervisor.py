"""``mssante serve --workers N``: one parent binds every listener, N forked children serve them.

Theory of operation: the parent binds each listening socket once (port 0 resolves to one port
shared by all children), then forks N children before any event loop or thread exists. Each
child runs the ordinary runtime (:func:`mailserver.runtime.run`) on the inherited sockets; the
children accept fairly: a connection goes to the child holding the fewest
(:mod:`mailserver.listener`, through a table of counts shared across the fork).
The parent only supervises: a child that dies is started again after a back-off (0.5 s, doubled
for each quick death, at most 30 s; reset after a minute of life) and logged; SIGTERM/SIGINT are
forwarded to the children, which stop within their 9 s shutdown; any left after
:data:`STOP_GRACE` seconds is killed. See docs/SCALING.md for why not SO_REUSEPORT.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

from mailserver import metrics
from mailserver.config import Config, ListenConfig, parse_hostport
from mailserver.errors import ConfigError
from mailserver.listener import LoadTable, WorkerLoad
from mailserver.runtime import run, run_loop

__all__ = ["bind_listeners", "serve_workers", "STOP_GRACE", "with_shared_metrics"]

log = logging.getLogger(__name__)

STOP_GRACE = 9.5
"""Seconds the children get after SIGTERM before SIGKILL (the whole stop stays under 10 s)."""
BACKLOG = 1024
_NAMES = ("smtp", "submission", "submissions", "imap", "imaps", "http", "metrics")


_OWNED = "MSSANTE_METRICS_DIR_OWNED"


def with_shared_metrics() -> None:
    """Make sure the workers' metrics are summed: unless ``PROMETHEUS_MULTIPROC_DIR`` was set
    when :mod:`mailserver.metrics` was imported, set it (a fresh temporary directory) and
    start this command again (it must be set before prometheus-client creates any value)."""
    if metrics.MULTIPROCESS:
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        for name in os.listdir(path):  # values of an earlier run
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
        return
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mssante-metrics-")
    os.environ[_OWNED] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606


def bind_listeners(listen: ListenConfig) -> dict[str, socket.socket]:
    """One listening socket per configured listener, bound here (before forking)."""
    out: dict[str, socket.socket] = {}
    for name in _NAMES:
        value = getattr(listen, name)
        if not value:
            continue
        try:
            out[name] = _listen(*parse_hostport(value))
        except OSError as exc:
            for sock in out.values():
                sock.close()
            raise ConfigError([f"cannot listen on --{name} {value}: {exc.strerror or exc}"]
                              ) from exc
        sock = out[name]
        bound = sock.getsockname()
        log.info("listening: %s %s:%d (shared by the workers)", name, bound[0], bound[1])
    return out


def _listen(host: str, port: int) -> socket.socket:
    info = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                              flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class _Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    failures: int = 0
    due: float = 0.0


def _child(config: Config, listen: ListenConfig, sockets: dict[str, socket.socket],
           load: WorkerLoad) -> int:
    """In the forked child: die with the parent, then serve until told to stop."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: an orphan stops
    except (OSError, AttributeError):
        pass
    try:
        run_loop(config, run(config, listen, sockets=sockets, load=load))
    except Exception:  # noqa: BLE001 - reported, the parent restarts the child
        log.exception("worker: crashed")
        return 1
    return 0


def _start(slot: _Slot, config: Config, listen: ListenConfig,
           sockets: dict[str, socket.socket], table: LoadTable) -> None:
    pid = os.fork()
    if pid == 0:  # the child never returns into the parent's code
        code = 1
        try:
            code = _child(config, listen, sockets, table.worker(slot.index))
        finally:
            os._exit(code)
    slot.pid, slot.started = pid, time.monotonic()
    log.info("worker %d started (pid %d)", slot.index, pid)


def _reaped(slots: list[_Slot]) -> list[tuple[_Slot, int]]:
    """The children that ended since the last look, with their wait status."""
    out: list[tuple[_Slot, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        for slot in slots:
            if slot.pid == pid:
                metrics.worker_gone(pid)
                slot.pid = 0
                out.append((slot, status))


def _backoff(slot: _Slot, now: float) -> None:
    """Schedule the restart of a dead child: quick deaths back off, up to 30 s."""
    slot.failures = 0 if now - slot.started > 60 else slot.failures + 1
    slot.due = now + min(30.0, 0.5 * 2 ** max(0, slot.failures - 1))


def _stop(slots: list[_Slot]) -> None:
    """Forward SIGTERM, wait up to :data:`STOP_GRACE`, then kill what is left."""
    for slot in slots:
        if slot.pid:
            os.kill(slot.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while any(s.pid for s in slots) and time.monotonic() < deadline:
        _reaped(slots)
        time.sleep(0.05)
    for slot in slots:
        if slot.pid:
            log.warning("worker %d did not stop in time: killed", slot.index)
            os.kill(slot.pid, signal.SIGKILL)
            os.waitpid(slot.pid, 0)
            metrics.worker_gone(slot.pid)
            slot.pid = 0


def serve_workers(config: Config, listen: ListenConfig, workers: int) -> int:
    """Bind, fork ``workers`` children, restart the ones that die, stop on SIGTERM/SIGINT."""
    sockets = bind_listeners(listen)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    slots = [_Slot(i) for i in range(workers)]
    table = LoadTable(workers)  # open connections per worker, for fair accepting
    for slot in slots:
        _start(slot, config, listen, sockets, table)
    while not stopping:
        now = time.monotonic()
        for slot, status in _reaped(slots):
            log.warning("worker %d exited (status %d): restarting", slot.index,
                        os.waitstatus_to_exitcode(status))
            _backoff(slot, now)
            table.absent(slot.index)
        for slot in slots:
            if not slot.pid and slot.due <= now and not stopping:
                _start(slot, config, listen, sockets, table)
        time.sleep(0.1)
    log.info("stopping %d workers", workers)
    _stop(slots)
    for sock in sockets.values():
        sock.close()
    owned = os.environ.get(_OWNED)
    if owned and owned == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(owned, ignore_errors=True)
    return 0
