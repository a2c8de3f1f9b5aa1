"""What clients send, as the session takes it: start options under the tenant's defaults, and
audio (a WAV file's bytes as well as raw samples; Opus and G.711 decoded to PCM on arrival)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from transcription.codecs import CodecError, WireDecoder, container_of, open_decoder
from transcription.engine import ConfigError, SessionConfig, parse_start
from transcription.engine.audio import AudioFormatError, WavHeader, looks_like_wav, parse_wav_header
from transcription.engine.config import SessionDefaults
from transcription.engine_settings import session_limits
from transcription.gateway.errors import ProtocolError


@dataclass(frozen=True)
class WavPrefix:
    header: WavHeader
    rest: bytes  # the frame's audio after the header


def wav_prefix(data: bytes) -> WavPrefix | None:
    """The WAV header at the start of a first audio frame, if it has one (checked)."""
    if not looks_like_wav(data):
        return None
    try:
        header = parse_wav_header(data)
    except AudioFormatError as error:
        raise ProtocolError("bad_audio", f"Invalid WAV header: {error}") from None
    return WavPrefix(header, data[header.header_bytes :])


def start_options(header: WavHeader) -> dict[str, object]:
    """The session a WAV header describes, for a client that sent no 'start'."""
    return {"sample_rate": header.sample_rate, "encoding": header.encoding, "channels": header.channels}


def check_matches(header: WavHeader, config: SessionConfig) -> None:
    declared = (config.sample_rate, config.encoding, config.channels)
    if (header.sample_rate, header.encoding, header.channels) != declared:
        raise ProtocolError(
            "bad_audio",
            f"WAV header says {header.sample_rate} Hz {header.encoding} x{header.channels} "
            f"but 'start' declared {declared[0]} Hz {declared[1]} x{declared[2]}.",
        )


def check_whole_samples(data: bytes, config: SessionConfig) -> None:
    if len(data) % config.bytes_per_frame:
        raise ProtocolError(
            "bad_audio",
            f"Audio frame of {len(data)} bytes is not a whole number of {config.encoding} samples "
            f"({config.bytes_per_frame} bytes each, {config.channels} channel(s)).",
        )


def engine_pieces(pcm: bytes, config: SessionConfig) -> Iterator[bytes]:
    """Decoded audio in pieces no larger than a client's frame, as the engine and replay have always had it
    (a few bytes of Opus can be seconds of PCM)."""
    frame, limit = config.bytes_per_frame, settings.ASR_MAX_FRAME_BYTES
    step = max(limit - limit % frame, frame)
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]


class FirstFrame:
    """A session's first audio frame may start with a WAV header, or as an Ogg or WebM stream does
    (Opus, as browsers record it): it then says or checks the format."""

    def __init__(self) -> None:
        self.seen = False
        self.declared_empty = False  # the header said no samples follow

    def take(self, data: bytes, config: SessionConfig | None) -> tuple[dict[str, object] | None, bytes]:
        """(start options when no session started yet and the header gives them, the audio after it)."""
        if self.seen:
            return None, data
        self.seen = True
        wav = wav_prefix(data)
        if wav is None:
            return _container_options(data, config), data
        self.declared_empty = wav.header.data_bytes == 0
        if config is None:
            return start_options(wav.header), wav.rest
        check_matches(wav.header, config)
        return None, wav.rest


def _container_options(data: bytes, config: SessionConfig | None) -> dict[str, object] | None:
    """A first frame in a container starts an opus session, and is refused by a session declared otherwise."""
    container = container_of(data)
    if container is None:
        return None
    if config is None:
        return {"encoding": "opus"}
    if config.encoding != "opus":
        stream = "an Ogg" if container == "ogg" else "a WebM"
        raise ProtocolError(
            "bad_audio",
            f"The audio is {stream} stream but 'start' declared {config.encoding}; "
            "declare 'encoding': 'opus' for Opus in Ogg or WebM.",
        )
    return None


class Decoding:
    """A connection's wire decoder (transcription/codecs/): the client's bytes as the session's PCM.

    One per connection: a client that resumes sends its container afresh."""

    def __init__(self, config: SessionConfig) -> None:
        self.decoder: WireDecoder | None = open_decoder(config)

    def decode(self, data: bytes) -> bytes:
        if self.decoder is None:
            return data
        with _as_bad_audio():
            return self.decoder.decode(data)

    def flush(self) -> bytes:
        """What the decoder still holds, when the client ends the stream."""
        if self.decoder is None:
            return b""
        with _as_bad_audio():
            return self.decoder.flush()


@contextmanager
def _as_bad_audio() -> Iterator[None]:
    try:
        yield
    except CodecError as error:
        raise ProtocolError("bad_audio", str(error)) from None


def session_config(options: dict[str, Any], defaults: SessionDefaults, stable_partials: bool) -> SessionConfig:
    """A start's options, under the tenant's defaults, as the session's config; refused as invalid_start."""
    try:
        return parse_start(options, session_limits(), defaults=defaults, stable_partials=stable_partials)
    except ConfigError as error:
        raise ProtocolError("invalid_start", str(error)) from None
