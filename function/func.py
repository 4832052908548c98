"""``new``: the function as Knative func's own Python runtime serves it (``func-python``).

func's builders install this package next to func-python and start it with
``func_python.http.serve(new)``: hypercorn on ``LISTEN_ADDRESS``, ``start`` and ``stop`` on the
ASGI lifespan. func-python answers ``/health/liveness`` and ``/health/readiness`` itself from
``alive`` and ``ready``; every other request reaches ``handle``, which serves it exactly as the
functions-framework entry point does (``asgi.serve``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from starlette.types import Receive, Scope, Send

from . import resp, store
from .asgi import serve
from .settings import Settings


class Function:
    """One instance per process; func-python calls its methods from its event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis: store.AsyncCommands | None = None
        self._closing: asyncio.Task[None] | None = None

    def start(self, cfg: Mapping[str, str]) -> None:
        """Makes the Redis client; it connects on first use, so Redis need not be up yet.

        ``cfg`` is a copy of the environment, which ``new`` has already read into settings.
        """
        self._redis = store.async_client(self.settings)

    def stop(self) -> None:
        """Closes the Redis client's connections.

        func-python calls this without awaiting it, from inside the event loop it is about to
        leave, so the close runs as a task there.
        """
        client, self._redis = self._redis, None
        if client is not None:
            # The task is kept here because the event loop holds its tasks only weakly.
            closing = client.aclose()
            self._closing = asyncio.get_running_loop().create_task(closing)

    def alive(self) -> tuple[bool, str]:
        # The process answers, which is all liveness asks: a restart would not bring Redis back.
        return True, "alive"

    def ready(self) -> tuple[bool, str]:
        # From the process alone: a Redis outage is answered 503 per request, and taking every
        # instance out of the route during a blip would turn it into a full outage.
        if self._redis is None:
            return False, "no Redis client: before start() or after stop()"
        return True, "ready"

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(scope, receive, send, self.settings, self._client)

    def _client(self) -> store.AsyncCommands:
        if self._redis is None:
            raise RuntimeError("a request arrived outside start() and stop()")
        return self._redis


def new() -> Function:
    """func-python's constructor; a bad setting ends the process here, before it listens."""
    function = Function(Settings.from_env(os.environ))  # func calls new() once per process
    resp.warn_if_slow()  # func's host build may ship a hiredis of another platform
    return function
