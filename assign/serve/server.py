"""Running the app under uvicorn, with a drain on SIGTERM/SIGINT.

One process (the default, and the only choice in window mode, whose queue lives in one
process): the app is built here and uvicorn's exit signal first starts the service's drain
(no new contacts, the window in flight finishes, every waiter is answered), then uvicorn
stops accepting and waits for the open requests. ``workers > 1`` (stateless ticks only):
uvicorn's worker processes each build the app from the settings left in the environment
(:func:`app_from_env`), each loading and warming its own router.
"""
from __future__ import annotations

import asyncio
import os

import uvicorn

from assign.serve.app import create_app
from assign.serve.config import ENV_CONFIG, ServeConfig


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the service to drain when the exit signal comes."""

    def __init__(self, config: uvicorn.Config, *, service) -> None:
        super().__init__(config)
        self.service = service
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets=None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig, frame) -> None:
        if self.loop is not None and not self.should_exit:
            self.loop.call_soon_threadsafe(self.service.begin_drain)
        super().handle_exit(sig, frame)


def app_from_env():
    """The app of a uvicorn worker process (``--workers N``)."""
    return create_app(ServeConfig.from_env())


def _uvicorn_kw(config: ServeConfig) -> dict:
    return {"host": config.host, "port": config.port, "access_log": False, "log_level": "warning",
                "timeout_keep_alive": 5, "timeout_graceful_shutdown": config.shutdown_timeout_s or None,
                "limit_concurrency": 2048, "backlog": 2048, "lifespan": "on", "server_header": False}


def serve(config: ServeConfig) -> None:
    """Run the service until SIGTERM/SIGINT (blocks)."""
    if config.workers > 1:
        os.environ[ENV_CONFIG] = config.to_json()
        uvicorn.run("assign.serve.server:app_from_env", factory=True, workers=config.workers,
                    **_uvicorn_kw(config))
        return
    app = create_app(config)
    server = _DrainingServer(uvicorn.Config(app, **_uvicorn_kw(config)), service=app.service)
    server.run()
