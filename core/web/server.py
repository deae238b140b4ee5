"""Run the panel with uvicorn inside the core's task group."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import anyio
import uvicorn

from .app import create_app

log = logging.getLogger("firebus.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The firebus CLI owns SIGINT/SIGTERM (it stops the core, which stops us).
        yield


class WebServer:
    """What ``serve`` hands to ``task_status.started``: where it listens, and the app."""

    def __init__(self, server: _Server, app: Any) -> None:
        self.server = server
        self.app = app
        self._stop = anyio.Event()

    def stop(self) -> None:
        """Shut down (open event streams end, then uvicorn); ``serve`` then returns."""
        self._stop.set()

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def host(self) -> str:
        return self.server.config.host

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        scheme = "https" if self.server.config.ssl_keyfile else "http"
        return f"{scheme}://{host}:{self.port}"


async def serve(
    core: Any,
    host: str | None = None,
    port: int | None = None,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    forwarded_allow_ips: str | None = None,
    task_status: Any = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the panel and API until cancelled; ``port=0`` picks a free port.

    Start it with ``await task_group.start(serve, core, host, port)``: ``started``
    is called once the socket listens, with a ``WebServer`` (``.url``, ``.port``).
    ``WebServer.stop()`` or cancelling the task group shuts it down in order (open
    event streams end first, then uvicorn, within ``timeout_graceful_shutdown``).
    """
    web_cfg = core.site.web
    app = create_app(core)
    config = uvicorn.Config(
        app,
        host=host if host is not None else web_cfg.host,
        port=port if port is not None else web_cfg.port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        # Behind a reverse proxy, X-Forwarded-Proto/For are trusted only from these
        # addresses (HA's trusted_proxies); direct clients cannot spoof them.
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=3,
    )
    server = _Server(config)
    done = anyio.Event()

    async def run() -> None:
        try:
            # Shielded: uvicorn shuts down in order when should_exit is set below,
            # instead of being cancelled half-way with its sockets open.
            with anyio.CancelScope(shield=True):
                await server.serve()
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            while not server.started:
                if done.is_set():
                    raise RuntimeError(f"web server failed to start on {config.host}:{config.port}")
                await anyio.sleep(0.02)
            handle = WebServer(server, app)
            log.info("panel listening on %s", handle.url)
            task_status.started(handle)
            await handle._stop.wait()
        finally:
            app.state.web.closing.set()
            server.should_exit = True
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(10):
                    await done.wait()
