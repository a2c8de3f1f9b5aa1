"""Serve the platform: ``python -m asrplatform.server [--host H] [--port P]``.

One command for every deployment (``make run``, ``make stack``, production, tests and benchmarks)
so that what is tested is what runs. It serves ``asrplatform.asgi:application`` with uvicorn:

- request bodies stream to the application, so ``asrplatform.edge.body_limits`` refuses an
  unauthenticated or oversize upload before reading it (daphne reads every body whole first);
- uvicorn stops reading a WebSocket while the application has not taken the last message, so a
  client that sends faster than the gateway consumes (it paces audio, ASR_MAX_AUDIO_SPEED) waits
  at the socket;
- uvicorn's own proxy-header handling is off: the client's address comes from
  ``ASR_TRUSTED_PROXIES`` in ``asrplatform.edge.client_address``, for HTTP and WebSocket alike;
- no access log: a WebSocket URL may carry a stream token (``?token=``), a secret;
- a request head must arrive whole within ``ASR_HTTP_HEADER_TIMEOUT_S``, and the process holds at
  most ``ASR_HTTP_MAX_CONNECTIONS`` connections (``HttpProtocol``).
"""

import argparse
import asyncio
import logging
import os
from typing import Any, cast

import h11
import uvicorn
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from transcription import instruments

logger = logging.getLogger(__name__)

# WebSocket messages past this size end the connection (1009) before the application sees them.
# Above the protocol's frame limit, so a frame slightly over it still gets the clear
# ``frame_too_large`` error from the gateway.
WS_MAX_MESSAGE_BYTES = 1024 * 1024
# Seconds a stopping server waits for open sessions to finish (store their last finals).
GRACEFUL_SHUTDOWN_S = 30
# After the server closes a WebSocket, how long it waits for the client's close reply, reading and
# discarding whatever the client still sends meanwhile (uvicorn waits 10 s: a flooding client cut
# off for its rate got 10 s of the event loop).
CLOSE_REPLY_TIMEOUT_S = 1.0


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, waiting less for a close reply."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_REPLY_TIMEOUT_S


class HttpProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head and a cap on connections.

    uvicorn has no timeout for a request head (its keep-alive timer stops at the first byte), so a
    client trickling its headers holds a connection as long as it likes, and enough of them every
    file descriptor. Nor is uvicorn's ``limit_concurrency`` a bound: once the connections (WebSocket
    streams and trickling clients included) reach it, it answers HTTP requests 503, but it never
    closes a connection or refuses a WebSocket handshake.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))
        if len(self.connections) > settings.ASR_HTTP_MAX_CONNECTIONS:
            # A head comes in a packet or two: the connection that has waited longest for its head is
            # the likeliest to be trickling it. None waiting: every connection is in use, refuse this one.
            oldest = self._oldest_waiting_head()
            if oldest is None:
                logger.warning("connection refused: ASR_HTTP_MAX_CONNECTIONS=%d", settings.ASR_HTTP_MAX_CONNECTIONS)
                self.transport.close()
                return
            oldest.drop_for_head()
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def drop_for_head(self) -> None:
        """Close a connection whose request head has not come in time (or at the connection cap)."""
        self._stop_head_deadline()
        if not self.transport.is_closing():
            logger.debug("request head not received in time, closing client=%s", self.client)
            self.transport.close()

    def _watch_head(self) -> None:
        """A deadline runs while h11 waits for a head (IDLE), from the connection or from the first byte of
        a kept-alive connection's next head (uvicorn's keep-alive timeout covers the silence before it);
        a parsed head, an upgrade to WebSocket included, stops it."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self.head_deadline is None:
            self.head_deadline = self.loop.call_later(settings.ASR_HTTP_HEADER_TIMEOUT_S, self.drop_for_head)
        elif not waiting:
            self._stop_head_deadline()

    def _oldest_waiting_head(self) -> "HttpProtocol | None":
        deadlines = {
            c: c.head_deadline.when() for c in self.connections if isinstance(c, HttpProtocol) and c.head_deadline
        }
        return min(deadlines, key=deadlines.__getitem__, default=None)

    def _stop_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m asrplatform.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("ASR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ASR_PORT", "8000")))
    parser.add_argument("--ssl-keyfile", help="serve https:// and wss:// with this private key (PEM)")
    parser.add_argument("--ssl-certfile", help="... and this certificate chain (PEM)")
    parser.add_argument("--log-level", default=os.environ.get("ASR_SERVER_LOG_LEVEL", "info"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.base")
    uvicorn.run(
        "asrplatform.asgi:application",
        host=args.host,
        port=args.port,
        http=HttpProtocol,
        ws=WebSocketProtocol,
        # No server pings: a paced or backpressured client's pong waits behind the audio it already
        # sent, so a ping timeout would cut healthy connections. Idle sessions end by ASR_IDLE_TIMEOUT_S.
        ws_ping_interval=None,
        lifespan="on",  # the application's background work (transcription.sweeper) runs from start to shutdown
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level=args.log_level,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
    )
    instruments.mark_process_dead(os.getpid())


if __name__ == "__main__":
    main()
