"""Driving the real ASGI application over a WebsocketCommunicator: send audio and JSON, collect replies."""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from channels.testing import WebsocketCommunicator

from asrplatform.asgi import application

URL = "/ws/v1/transcribe"


def communicator(raw_key: str | None = None) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Bearer {raw_key}".encode())] if raw_key else []
    return WebsocketCommunicator(application, URL, headers=headers)


@dataclass
class Transcript:
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return self.of_type("final")

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of_type("error")
        return errors[0] if errors else None


async def read_until_closed(comm: WebsocketCommunicator, transcript: Transcript, timeout: float = 60) -> Transcript:
    """Collect server messages until the server closes the socket."""
    if transcript.close_code is not None:
        return transcript
    async with asyncio.timeout(timeout):
        while True:
            output = await comm.receive_output(timeout=timeout)
            if output["type"] == "websocket.close":
                transcript.close_code = output.get("code", 1000)
                return transcript
            transcript.messages.append(json.loads(output["text"]))


async def drain_available(comm: WebsocketCommunicator, transcript: Transcript) -> None:
    while not await comm.receive_nothing(timeout=0.05):
        output = await comm.receive_output()
        if output["type"] == "websocket.close":
            transcript.close_code = output.get("code", 1000)
            return
        transcript.messages.append(json.loads(output["text"]))


async def send_audio(
    comm: WebsocketCommunicator,
    pcm: bytes,
    *,
    frame_bytes: int = 3200,
    pace_s: float = 0.0,
    transcript: Transcript | None = None,
) -> None:
    """Send audio in frames; with ``pace_s`` sleep between frames and collect what arrives meanwhile."""
    for i in range(0, len(pcm), frame_bytes):
        if transcript is not None and transcript.close_code is not None:
            return
        await comm.send_to(bytes_data=pcm[i : i + frame_bytes])
        if pace_s:
            await asyncio.sleep(pace_s)
            if transcript is not None:
                await drain_available(comm, transcript)


async def send_json(comm: WebsocketCommunicator, message: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(message))


async def receive_until(ws: Any, kind: str, timeout: float = 30) -> list[dict[str, Any]]:
    """For a `websockets` client connection: messages up to and including the first of ``kind``."""
    messages = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            messages.append(message)
            if message["type"] == kind:
                return messages
