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
- no access log: a WebSocket URL may carry a stream token (``?token=``), a secret.
"""

import argparse
import os
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

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
        http="h11",
        ws=WebSocketProtocol,
        # No server pings: a paced or backpressured client's pong waits behind the audio it already
        # sent, so a ping timeout would cut healthy connections. Idle sessions end by ASR_IDLE_TIMEOUT_S.
        ws_ping_interval=None,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level=args.log_level,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
    )


if __name__ == "__main__":
    main()
