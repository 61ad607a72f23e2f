"""--workers N: N gateway processes on one port, each with its own event loop.

Every worker listens with SO_REUSEPORT, so the kernel spreads new connections
across them; a session stays in the worker that accepted it. This parent only
supervises: it reserves the port (so port 0 becomes one real port and a port
taken by another program is a clear error), starts the workers, restarts one
that dies (with a growing delay if it keeps dying right away), and on SIGTERM
or SIGINT stops them all and exits 0.
"""

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time

log = logging.getLogger("gateway.workers")

LOG_FORMAT = "%(asctime)s %(levelname).1s {}%(name)s: %(message)s"
STOP_GRACE_S = 10.0  # sessions get this long to close before a worker is killed
QUICK_DEATH_S = 5.0  # a worker that dies sooner than this after starting is restarted with backoff


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def reserve_port(host, port):
    """A socket bound to host:port with SO_REUSEPORT but not listening: it fixes
    port 0 to one real port until the workers listen on it, and fails (OSError)
    if another program holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's create_server does
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def _die_with_parent():
    """Ask Linux to SIGTERM this worker when the supervisor dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _worker(cfg, level, log_format, index, conn):
    _die_with_parent()
    handler = logging.StreamHandler()
    if log_format == "json":
        from .logsafe import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT.format(f"w{index} ")))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    import asyncio

    from .__main__ import _run  # here, not at the top: __main__ imports this module
    from .config import ConfigError, RunError

    try:
        asyncio.run(_run(cfg, reuse_port=True, on_ready=lambda port: conn.send(("ready", port))))
    except ConfigError as e:  # e.g. a TLS file that will not load: exit 2, as one process would
        conn.send(("error", "config", str(e)))
        sys.exit(2)
    except RunError as e:
        conn.send(("error", "run", str(e)))
        sys.exit(1)


class Supervisor:
    def __init__(self, cfg, n, level, log_format="text"):
        self.cfg = cfg
        self.n = n
        self.level = level
        self.log_format = log_format
        self.ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited loop or locks
        self.procs = [None] * n
        self.conns = [None] * n
        self.started = [0.0] * n
        self.backoff = [0.0] * n
        self.due = {}  # worker index -> monotonic time of its restart
        self.stopping = False

    def _on_signal(self, signum, frame):
        self.stopping = True

    def start(self, i):
        parent_end, child_end = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_worker, args=(self.cfg, self.level, self.log_format, i, child_end),
                             name=f"xiaozhi-gateway-worker-{i}")
        p.start()
        child_end.close()
        self.procs[i], self.conns[i], self.started[i] = p, parent_end, time.monotonic()
        log.info("worker %d started (pid %d)", i, p.pid)

    def _message(self, i):
        try:
            return self.conns[i].recv()
        except (EOFError, OSError):
            self.conns[i] = None  # the worker closed its end (it exited); its sentinel says so too
            return None

    def wait_ready(self):
        """None once every worker listens, else the first worker's error: (kind, text), kind
        "config" for bad settings, "run" for a failure to run."""
        pending = set(range(self.n))
        while pending and not self.stopping:
            ends = {self.conns[i]: i for i in pending if self.conns[i] is not None}
            ends.update({self.procs[i].sentinel: i for i in pending})
            for r in multiprocessing.connection.wait(list(ends), timeout=0.5):
                i = ends[r]
                msg = self._message(i) if r is self.conns[i] else None
                if msg and msg[0] == "ready":
                    pending.discard(i)
                elif msg and msg[0] == "error":
                    return msg[1], msg[2]
                elif not self.procs[i].is_alive():
                    return "run", f"worker {i} exited with code {self.procs[i].exitcode} before listening"
        return None

    def supervise(self):
        while not self.stopping:
            now = time.monotonic()
            for i, when in list(self.due.items()):
                if when <= now:
                    del self.due[i]
                    self.start(i)
            ends = {p.sentinel: i for i, p in enumerate(self.procs) if i not in self.due}
            ends.update({c: i for i, c in enumerate(self.conns) if c is not None and i not in self.due})
            for r in multiprocessing.connection.wait(list(ends), timeout=0.5):
                i = ends[r]
                if r is self.conns[i]:
                    msg = self._message(i)
                    if msg and msg[0] == "ready":
                        log.info("worker %d (pid %d) is listening again", i, self.procs[i].pid)
                    continue
                if self.stopping or i in self.due or self.procs[i].is_alive():
                    continue
                lived = time.monotonic() - self.started[i]
                self.backoff[i] = min(30.0, max(0.5, 2 * self.backoff[i])) if lived < QUICK_DEATH_S else 0.0
                log.error("worker %d (pid %d) died (exit code %s) after %.0f s; restarting it%s", i,
                          self.procs[i].pid, self.procs[i].exitcode, lived,
                          f" in {self.backoff[i]:.1f} s" if self.backoff[i] else "")
                self.due[i] = time.monotonic() + self.backoff[i]

    def stop(self):
        alive = [p for p in self.procs if p is not None and p.is_alive()]
        for p in alive:
            p.terminate()  # SIGTERM: the worker closes its sessions and exits
        deadline = time.monotonic() + STOP_GRACE_S
        for p in alive:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("worker pid %d did not stop in %.0f s; killing it", p.pid, STOP_GRACE_S)
                p.kill()
                p.join()


def run(cfg, n, level, announce, log_format="text"):
    """Run n workers until SIGTERM/SIGINT. Returns the exit code; announce(port) once all listen."""
    from .config import ConfigError, RunError

    try:
        holder = reserve_port(cfg.listen_host, cfg.listen_port)
    except OSError as e:
        raise RunError(f"cannot listen on {cfg.listen_host}:{cfg.listen_port}: {e.strerror or e}") from None
    cfg.listen_port = holder.getsockname()[1]
    if not cfg.redis.url:
        log.warning("%d workers without redis: each keeps its own replay cache and connect limits "
                    "(a token can be replayed once per worker); give --redis URL to share them", n)
    sup = Supervisor(cfg, n, level, log_format)
    signal.signal(signal.SIGTERM, sup._on_signal)
    signal.signal(signal.SIGINT, sup._on_signal)
    try:
        for i in range(n):
            sup.start(i)
        error = sup.wait_ready()
        holder.close()
        if error:
            kind, text = error
            raise (ConfigError if kind == "config" else RunError)(text)
        if not sup.stopping:
            announce(cfg.listen_port)
            sup.supervise()
    finally:
        holder.close()
        sup.stop()
    return 0
