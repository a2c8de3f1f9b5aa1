"""The real server (``python -m asrplatform.server``) in a subprocess, on the test database.

Started by bench's `GatewayServer`, the one launcher of the server, so the benchmark and the tests
run it the same way. Always started as a context manager: the process is stopped when the block
ends, however it ends (a test that fails before its first assertion included).
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from django.conf import settings

from bench.server import GatewayServer, free_port

from .paths import artifacts

__all__ = ["GatewayServer", "free_port", "gateway_server", "running_in_thread", "child_database_url"]


def child_database_url() -> str:
    """The database pytest-django made, as a DATABASE_URL for a child process."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a process a test starts (server, worker): production settings on the
    test database, with ``extra`` on top."""
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="asrplatform.settings.base",
        DATABASE_URL=child_database_url(),
        SECRET_KEY=settings.SECRET_KEY,
        **extra,
    )


def gateway_server(
    *, extra_env: dict[str, str] | None = None, port: int | None = None, tls: tuple[Path, Path] | None = None
) -> GatewayServer:
    """The server on the test database, not yet started: ``with gateway_server() as server:``.

    Its log is test-artifacts/server-PORT.log. ``tls``: (private key, certificate chain) PEM files.
    """
    env = child_env(**(extra_env or {}))
    port = port or free_port()
    return GatewayServer(
        artifacts(), env, port=port, startup_timeout=120, log_name=f"server-{port}.log", prepare=False, tls=tls
    )


@asynccontextmanager
async def running_in_thread(server: GatewayServer) -> AsyncIterator[GatewayServer]:
    """For async tests: start and stop ``server`` off the event loop; stopped however the block ends."""
    try:
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.stop)
