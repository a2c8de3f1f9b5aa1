"""WebSocket URLs, and a clean 404 for any other path (not the 500 of an unmatched route)."""

from typing import Any

from django.urls import re_path

from transcription.gateway.consumer import TranscribeConsumer
from transcription.gateway.deepgram_consumer import DeepgramConsumer
from transcription.gateway.funasr_consumer import FunasrConsumer
from transcription.gateway.realtime_consumer import RealtimeConsumer
from transcription.gateway.twilio_consumer import TwilioConsumer


async def not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Refuse the handshake: HTTP 404 where the server can answer with a response, else a plain denial."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b"No WebSocket endpoint at this path; see /ws/v1/transcribe.\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


websocket_urlpatterns = [
    re_path(r"^ws/v1/transcribe$", TranscribeConsumer.as_asgi()),
    re_path(r"^v1/listen$", DeepgramConsumer.as_asgi()),
    re_path(r"^ws/funasr$", FunasrConsumer.as_asgi()),
    re_path(r"^v1/realtime$", RealtimeConsumer.as_asgi()),
    re_path(r"^ws/twilio$", TwilioConsumer.as_asgi()),
    re_path(r"", not_found),  # type: ignore[arg-type]  # an ASGI app: channels routes with Django's re_path
]
