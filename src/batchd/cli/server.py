"""`batchd serve`: the API and an engine sharing one store, served by granian.

Granian binds the port in the process the user started and runs the app in one worker process
that it forks: the app, its lifespan (store, engine) and every request live in the worker, which
dies with its parent even if the parent is killed with SIGKILL, so the port and the SQLite lock are
never held by an orphan. Granian also enforces the connection limits (README, "Connections and
limits"): the header size (431), the header deadline, which is also the idle keep-alive timeout
and closes connections that never send, and the connection cap, whose excess waits in the kernel's
accept queue without a descriptor. The body deadline is the app's (api/deadline.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import os
import resource
import signal
import socket
import sys
import typing
from collections.abc import AsyncIterator
from typing import Any

from granian import _granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer
from starlette.applications import Starlette

from batchd import app as web_app
from batchd import store
from batchd.api import webhooks as api_webhooks
from batchd.api.services import Services
from batchd.cli import debug
from batchd.config import Settings
from batchd.engine import Dispatcher
from batchd.engine.router import Router, tools_secret

logger = logging.getLogger("batchd")

FD_RESERVE = 64  # descriptors besides connections and backend calls: store files, logs, pools, pipes
BACKLOG = 1024  # connections the kernel queues beyond max_connections; past it, new ones wait in SYN retries
_PR_SET_PDEATHSIG = 1  # prctl(2)

# Granian's own lines go through batchd's handler and format (logging.basicConfig in serve()).
# Its access log stays off: batchd.access logs each request with its request id.
_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"_granian": {"propagate": True}, "granian.access": {"propagate": True}},
}


def build_app(settings: Settings) -> Starlette:
    """The ASGI app; its lifespan opens the store and runs the engine."""
    the_store = store.open_store(
        settings.store_url, max_running=settings.fleet_max_running, weights=settings.weights
    )
    services = Services(settings=settings, store=the_store)
    app = web_app.create_app(services)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        debug.install()
        await the_store.open()
        router = Router.from_settings(
            settings,
            metrics=services.metrics,
            tools_secret=await tools_secret(the_store, settings),
            store=the_store,
        )
        engine = Dispatcher(
            settings,
            the_store,
            router,
            metrics=services.metrics,
            webhooks=api_webhooks.sender(settings, the_store),
        )
        # A SQLite file is locked to this process, so any lease left in it is from a dead one.
        await engine.start(recover_all=settings.store_url.startswith("sqlite"))
        services.engine = engine
        services.router = router  # /v1/messages uses the same routes as the engine
        logger.info(
            "batchd ready on http://%s:%d (store %s)",
            settings.host,
            settings.port,
            store.redacted_url(settings.store_url),
        )
        try:
            yield
        finally:
            services.engine = services.router = None  # views answer "stopping" from here on
            await engine.stop()
            await router.aclose()
            await the_store.aclose()
            logger.info("batchd stopped")

    app.router.lifespan_context = lifespan
    return app


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        sys.exit(1)
    server = _Server(
        listener,
        "batchd",  # only a name in granian's log: the worker builds the app with the loader below
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        # HTTP/1 only: with "auto", granian waits without a deadline for a new connection's first
        # bytes to tell the version, so connections that never send would never be closed.
        http=HTTPModes.http1,
        websockets=False,
        workers=1,  # one engine per process, and a SQLite file belongs to one process
        loop=Loops.uvloop,
        backlog=BACKLOG,
        backpressure=connection_cap(settings),
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_timeout * 1000)),  # milliseconds
            max_buffer_size=settings.max_header_bytes,
        ),
        # Past it the worker is killed: the lifespan's shutdown does not run, and the leases it
        # held are recovered as after a crash.
        workers_kill_timeout=math.ceil(settings.shutdown_timeout),
        log_level=LogLevels(settings.log_level.value),
        log_dictconfig=_LOGGING,
        log_access=False,
    )
    server.on_startup(functools.partial(_main_signals, server))
    # A module-level function and picklable arguments: granian spawns instead of forking on
    # Python 3.14 and later.
    server.serve(target_loader=functools.partial(_worker_app, settings, os.getpid()))


class _Server(MPServer):
    """Granian's multiprocess server (the same on a free-threaded Python), listening on a socket
    bound by batchd (`_listen`), which the worker inherits."""

    def __init__(self, listener: socket.socket, *args: Any, **kwargs: Any) -> None:
        self._listener = listener
        super().__init__(*args, **kwargs)

    def _init_shared_socket(self) -> None:
        # Granian's path on Linux would bind in the worker with SO_REUSEPORT; this is its path
        # elsewhere, a socket bound by the main process, given the one batchd bound.
        holder = typing.cast(Any, _granian.SocketHolder)  # its stub omits the constructor
        self._shd = holder(self._listener.fileno(), False, BACKLOG)
        self._sso = self._listener  # closed by granian at shutdown


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket. Granian would set SO_REUSEPORT, with which a second batchd started on
    the same port shares its connections instead of failing to start; this one is exclusive."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)  # SO_REUSEADDR only
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted connections
    sock.set_inheritable(True)
    return sock


def connection_cap(settings: Settings) -> int:
    """Raises the open-file limit as far as the OS allows, then keeps the connection cap under it,
    leaving room for the engine's backend calls and FD_RESERVE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit the kernel caps lower
            logger.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = soft - settings.concurrency - FD_RESERVE
    cap = max(1, min(settings.max_connections, room))
    if cap < settings.max_connections:
        logger.warning(
            "max_connections lowered from %d to %d: the open-file limit is %d and the engine keeps "
            "%d (concurrency + %d); raise the limit (ulimit -n, LimitNOFILE=) to allow more",
            settings.max_connections,
            cap,
            soft,
            settings.concurrency + FD_RESERVE,
            FD_RESERVE,
        )
    logger.info("open-file limit %d, at most %d connections", soft, cap)
    return cap


def _main_signals(server: MPServer) -> None:
    """In the main process, after granian's own handlers (SIGINT, SIGTERM: a clean stop)."""
    # Granian answers SIGHUP by starting a new worker beside the old one, which cannot open a
    # SQLite store the old one holds: batchd stops cleanly instead, as on SIGTERM.
    signal.signal(signal.SIGHUP, server.signal_handler_interrupt)

    def dump_tasks(*_: object) -> None:  # the engine and its tasks are in the worker (cli/debug.py)
        for worker in server.wrks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.inner.pid, signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, dump_tasks)


def _worker_app(settings: Settings, parent: int, _target: str) -> Starlette:
    """Granian's loader, run in the worker: the app, built after the fork."""
    _die_with(parent)
    return build_app(settings)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies, however the parent died."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
