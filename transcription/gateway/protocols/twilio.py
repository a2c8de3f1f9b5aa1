"""Twilio Media Streams (``/ws/twilio``): its JSON events as our commands, bounded.

Twilio opens the socket and sends ``connected``, one ``start`` (``streamSid``, ``callSid``,
``tracks``, ``mediaFormat`` audio/x-mulaw 8000 Hz mono, the ``<Parameter>``s of the TwiML as
``customParameters``), then ``media`` (base64 μ-law, 20 ms a message, per track, with a
millisecond ``timestamp`` from the stream's start), ``mark``, ``dtmf`` and a last ``stop``.
Twilio sends no headers and no query string of ours, so the credential comes in the
``customParameters`` (``api_key`` or ``token``); their values are never logged.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from transcription.gateway.errors import CLOSE_UNAUTHENTICATED, ProtocolError

ENCODING, SAMPLE_RATE = "audio/x-mulaw", 8000
# What Twilio's start.tracks and media.track say, and the channel each is transcribed on: the
# caller (what Twilio hears from the phone) is Channel 1, what the call plays to them Channel 2.
TRACKS = ("inbound", "outbound")
MAX_MESSAGE_BYTES = 16 * 1024  # a start with every parameter; a media message is ~400 bytes
MAX_PAYLOAD_BYTES = 8000  # decoded μ-law in one media message: 1 s (Twilio sends 20 ms)
MAX_PARAMETERS = 32
MAX_PARAMETER_NAME = 64
MAX_PARAMETER_VALUE = 2048  # a callback URL may be this long (webhook_targets.MAX_URL_CHARS)
MAX_SID = 64
MAX_TIMESTAMP_MS = 48 * 3600 * 1000
SID = re.compile(r"^[A-Za-z0-9_-]+$")
# customParameters we read; every other one is the tenant's own and ignored.
CREDENTIALS = ("api_key", "token")
CALLBACK = "callback_url"
START_OPTIONS = ("language", "endpointing_ms")


@dataclass(frozen=True)
class StreamStart:
    stream_sid: str
    call_sid: str
    tracks: tuple[str, ...]  # in channel order
    parameters: dict[str, str] = field(repr=False)  # holds the credential: never printed

    @property
    def api_key(self) -> str | None:
        return self.parameters.get("api_key") or None

    @property
    def token(self) -> str | None:
        return self.parameters.get("token") or None

    @property
    def callback_url(self) -> str | None:
        return self.parameters.get(CALLBACK) or None

    def start_options(self) -> dict[str, Any]:
        """Our start: μ-law 8 kHz, one channel per track; the settings a tenant may pass as parameters."""
        options: dict[str, Any] = {"encoding": "mulaw", "sample_rate": SAMPLE_RATE, "channels": len(self.tracks)}
        options["interim_results"] = False  # Twilio gets nothing back: partials would cost CPU for no one
        if len(self.tracks) > 1:
            options["multichannel"] = True
        for name in START_OPTIONS:
            if name in self.parameters:
                options[name] = _option(name, self.parameters[name])
        return options

    @property
    def label(self) -> str:
        return f"Twilio call {self.call_sid}"


@dataclass(frozen=True)
class Media:
    track: str
    timestamp_ms: int
    payload: bytes  # μ-law samples


@dataclass(frozen=True)
class Other:
    """connected, mark, dtmf: nothing to do but keep the call alive."""

    event: str


@dataclass(frozen=True)
class StreamStop:
    pass


TwilioEvent = StreamStart | Media | Other | StreamStop


def _option(name: str, value: str) -> Any:
    if name == "endpointing_ms":
        try:
            return int(value)
        except ValueError:
            raise ProtocolError("invalid_start", f"Parameter {name!r} must be an integer.") from None
    return value


def parse(text: str) -> TwilioEvent:
    """One Twilio message; a malformed one is a ProtocolError (the call's stream ends with its reason)."""
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError("bad_message", "Message is not valid JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError("bad_message", "Message must be a JSON object with an 'event'.")
    event = data["event"]
    if event == "media":
        return _media(data.get("media"))
    if event == "start":
        return _start(data.get("start"))
    if event == "stop":
        return StreamStop()
    if event in ("connected", "mark", "dtmf"):
        return Other(event)
    raise ProtocolError("bad_message", f"Unknown event {event[:40]!r}.")


def _sid(start: dict[str, Any], name: str) -> str:
    value = start.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_SID or not SID.match(value):
        raise ProtocolError("invalid_start", f"'start.{name}' must be a Twilio SID.")
    return value


def _start(start: Any) -> StreamStart:
    if not isinstance(start, dict):
        raise ProtocolError("invalid_start", "'start' must be an object.")
    media_format = start.get("mediaFormat") or {}
    if not isinstance(media_format, dict):
        raise ProtocolError("invalid_start", "'start.mediaFormat' must be an object.")
    encoding, rate = media_format.get("encoding", ENCODING), media_format.get("sampleRate", SAMPLE_RATE)
    if encoding != ENCODING or rate != SAMPLE_RATE or media_format.get("channels", 1) != 1:
        raise ProtocolError("invalid_start", f"Only {ENCODING} at {SAMPLE_RATE} Hz, one channel a track, is served.")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not tracks or len(tracks) > 2 or any(t not in TRACKS for t in tracks):
        raise ProtocolError("invalid_start", "'start.tracks' must name 'inbound' and/or 'outbound'.")
    ordered = tuple(t for t in TRACKS if t in tracks)
    return StreamStart(_sid(start, "streamSid"), _sid(start, "callSid"), ordered, _parameters(start))


def _parameters(start: dict[str, Any]) -> dict[str, str]:
    parameters = start.get("customParameters") or {}
    if not isinstance(parameters, dict) or len(parameters) > MAX_PARAMETERS:
        raise ProtocolError("invalid_start", f"'customParameters' must be an object of at most {MAX_PARAMETERS}.")
    for name, value in parameters.items():
        if len(name) > MAX_PARAMETER_NAME or not isinstance(value, str) or len(value) > MAX_PARAMETER_VALUE:
            raise ProtocolError(
                "invalid_start",
                f"Custom parameters are strings, names of at most {MAX_PARAMETER_NAME} characters and "
                f"values of at most {MAX_PARAMETER_VALUE}.",
            )
    return {name: value.strip() for name, value in parameters.items()}


def _media(media: Any) -> Media:
    if not isinstance(media, dict):
        raise ProtocolError("bad_message", "'media' must be an object.")
    track = media.get("track", "inbound")
    if track not in TRACKS:
        raise ProtocolError("bad_message", "'media.track' must be 'inbound' or 'outbound'.")
    try:
        timestamp = int(media.get("timestamp", 0))
    except (TypeError, ValueError):
        raise ProtocolError("bad_message", "'media.timestamp' must be milliseconds.") from None
    if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise ProtocolError("bad_message", "'media.timestamp' is out of range.")
    payload = media.get("payload")
    if not isinstance(payload, str) or len(payload) > -(-MAX_PAYLOAD_BYTES // 3) * 4:
        raise ProtocolError("bad_audio", f"'media.payload' must be base64 of at most {MAX_PAYLOAD_BYTES} bytes.")
    try:
        audio = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("bad_audio", "'media.payload' is not valid base64.") from None
    return Media(track, timestamp, audio)


def missing_credential() -> ProtocolError:
    return ProtocolError(
        "unauthenticated",
        'Missing credential: add <Parameter name="api_key" value="..."/> (or name="token") to the <Stream>.',
        CLOSE_UNAUTHENTICATED,
    )


def bad_credential() -> ProtocolError:
    return ProtocolError("unauthenticated", "Invalid, expired or revoked API key or token.", CLOSE_UNAUTHENTICATED)
