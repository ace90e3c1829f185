"""Real ASGI servers (uvicorn, hypercorn) in the test's event loop, on free loopback ports.

:class:`AsgiServer` looks like :class:`csms_kit.CsmsServer` where the integration
matrix uses it (``async with``, ``port``, ``sessions``, ``registry``, ``close()``), so
that the same tests run against :func:`csms_kit.asgi.ocpp_endpoint` served by:

* ``uvicorn``: the endpoint as the top-level app, started by the ASGI lifespan protocol;
* ``hypercorn``: the same under hypercorn;
* ``starlette``: the endpoint mounted in a Starlette app under uvicorn, its lifetime
  joined to the app's lifespan with ``async with endpoint:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import hypercorn.asyncio
import hypercorn.config
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from csms_kit.asgi import OcppEndpoint, ocpp_endpoint
from csms_kit.exceptions import UsageError
from csms_kit.registry import ConnectionRegistry
from csms_kit.session import StationSession

HOST = "127.0.0.1"
KINDS = ("uvicorn", "hypercorn", "starlette")
#: serve() options with no ocpp_endpoint() counterpart: the ASGI server's settings.
SERVER_OPTIONS = ("ping_interval", "ping_timeout", "close_timeout", "open_timeout")


def starlette_app(endpoint: OcppEndpoint, mount: str = "/") -> Starlette:
    """A Starlette app mounting ``endpoint`` at ``mount``, as a user's app does."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with endpoint:
            yield

    return Starlette(routes=[Mount(mount, app=endpoint)], lifespan=lifespan)


class AsgiServer:
    """An ASGI server of ``kind`` serving ``app`` (by default the endpoint itself)."""

    def __init__(
        self,
        kind: str,
        endpoint: OcppEndpoint,
        app: Any = None,
        *,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        close_timeout: float | None = 1,
    ) -> None:
        self.kind = kind
        self.endpoint = endpoint
        if app is None:
            app = starlette_app(endpoint) if kind == "starlette" else endpoint
        self.app = app
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._shutdown = asyncio.Event()
        self._closed = False

    # -- what the matrix uses -------------------------------------------------------------

    @property
    def registry(self) -> ConnectionRegistry:
        return self.endpoint.registry

    @property
    def sessions(self) -> frozenset[StationSession]:
        return self.endpoint.sessions

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket while the server runs."""
        return () if self._sock is None or self._task is None else (self._sock,)

    @property
    def port(self) -> int:
        if not self.sockets:
            raise UsageError("the server is not listening")
        port: int = self._sock.getsockname()[1]  # type: ignore[union-attr]
        return port

    async def __aenter__(self) -> AsgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._closed or self._task is not None:
            raise UsageError("this server has already been started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sock.listen(100)
        self._sock = sock
        if self.kind == "hypercorn":
            config = hypercorn.config.Config()
            config.bind = [f"fd://{sock.fileno()}"]
            config.accesslog = None
            config.errorlog = None
            config.graceful_timeout = 1
            config.websocket_ping_interval = self.ping_interval
            self._task = asyncio.create_task(
                hypercorn.asyncio.serve(self.app, config, shutdown_trigger=self._shutdown.wait)
            )
        else:
            config_u = uvicorn.Config(
                self.app,
                log_config=None,
                lifespan="on",
                ws_ping_interval=self.ping_interval,
                ws_ping_timeout=self.ping_timeout,
                timeout_graceful_shutdown=1,
            )
            self._uvicorn = uvicorn.Server(config_u)
            self._task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not self._started():
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.kind} stopped while starting")
            if loop.time() > deadline:
                raise TimeoutError(f"{self.kind} did not start")
            await asyncio.sleep(0.005)

    def _started(self) -> bool:
        if self.endpoint.state != "running":
            return False
        return self._uvicorn is None or self._uvicorn.started

    async def close(self, **options: Any) -> None:
        """Close the endpoint gracefully (as ``serve()``'s close), then stop the server."""
        if self._closed or self._task is None:
            return
        self._closed = True
        await self.endpoint.close(**options)
        await self.stop()

    async def stop(self) -> None:
        """Stop the ASGI server (its own shutdown, then the lifespan shutdown)."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        self._shutdown.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._sock is not None:
            if self.kind == "hypercorn":
                self._sock.detach()  # hypercorn took over the file descriptor and closed it
            else:
                self._sock.close()
            self._sock = None


def asgi_start(kind: str, sessions: Any, **options: Any) -> AsgiServer:
    """Like the matrix's ``start()``: serve() options split between endpoint and server."""
    server_options = {name: options.pop(name) for name in SERVER_OPTIONS if name in options}
    server_options.pop("open_timeout", None)
    return AsgiServer(kind, ocpp_endpoint(sessions, **options), **server_options)
