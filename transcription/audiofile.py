"""Audio files (WAV, FLAC, MP3, OGG/Opus, WebM, M4A) → 16 kHz float32, mono or one stream per
channel, with PyAV (FFmpeg).

Uploaded files are untrusted: only an allow-list of containers is opened, and every failure
becomes an :class:`AudioFileError` with a code and a message meant for the uploader.
No Django here, so a worker on any host can use it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np

TARGET_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 384000
# FFmpeg demuxer names we accept (a demuxer's name lists the formats it covers).
ALLOWED_FORMATS = {
    "wav": "WAV",
    "flac": "FLAC",
    "mp3": "MP3",
    "ogg": "OGG (Opus, Vorbis)",
    "matroska,webm": "WebM / Matroska",
    "mov,mp4,m4a,3gp,3g2,mj2": "M4A / MP4",
}
SUPPORTED = ", ".join(ALLOWED_FORMATS.values())


class AudioFileError(ValueError):
    """A file we cannot transcribe. ``code`` is stable for clients; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioFileInfo:
    format: str  # the demuxer, e.g. "wav", "matroska,webm"
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None  # from the container; None when it does not say


class BinaryFile(Protocol):
    """An open binary file: a plain one, a Django upload or a storage file."""

    def read(self, size: int = ..., /) -> bytes: ...

    def seek(self, offset: int, whence: int = ..., /) -> int: ...


Source = str | Path | BinaryFile


def _open(source: Source) -> av.container.InputContainer:
    try:
        container = av.open(
            str(source) if isinstance(source, str | Path) else source, mode="r", metadata_errors="ignore"
        )
    except av.FFmpegError as exc:
        raise AudioFileError("bad_audio", f"Not a readable audio file. Supported: {SUPPORTED}.") from exc
    if container.format.name not in ALLOWED_FORMATS:
        container.close()
        raise AudioFileError(
            "unsupported_format",
            f"Files in '{container.format.name}' format are not supported. Supported: {SUPPORTED}.",
        )
    if not container.streams.audio:
        container.close()
        raise AudioFileError("no_audio", "The file has no audio stream.")
    return container


def probe(source: Source) -> AudioFileInfo:
    """What the container says about its first audio stream; decodes only its first frame, so a
    file with a valid header but no decodable audio is refused at once rather than in its job."""
    container = _open(source)
    with container:
        stream = container.streams.audio[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        rate = int(stream.codec_context.sample_rate or 0)
        if not MIN_RATE <= rate <= MAX_RATE:
            raise AudioFileError("bad_audio", f"The audio stream's sample rate ({rate} Hz) is not plausible.")
        _first_frame(container, stream)
        return AudioFileInfo(
            format=container.format.name,
            codec=stream.codec_context.name,
            sample_rate=rate,
            channels=int(stream.codec_context.channels or 0),
            duration_s=duration if duration is not None and duration >= 0 else None,
        )


def decode(
    source: Source, *, chunk_s: float = 5.0, max_s: float | None = None, channels: int = 1
) -> Iterator[np.ndarray]:
    """Yield the first audio stream as 16 kHz float32 chunks of about ``chunk_s`` seconds: mixed down
    to mono, or with ``channels`` > 1 its channels kept apart, interleaved (the stream must have as many).

    Raises AudioFileError("too_long") as soon as more than ``max_s`` seconds have come out, so a
    file whose header lies about its length still cannot run past the limit.
    """
    chunk = int(chunk_s * TARGET_RATE) * channels
    limit = None if max_s is None else int(max_s * TARGET_RATE)
    pending: list[np.ndarray] = []
    pending_len = total = 0
    container = _open(source)
    with container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout=_layout(stream, channels), rate=TARGET_RATE)
        try:
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    total += len(samples) // channels
                    if limit is not None and total > limit:
                        raise AudioFileError("too_long", f"The audio is longer than the limit of {max_s:g} s.")
                    pending.append(samples)
                    pending_len += len(samples)
                    if pending_len >= chunk:
                        yield np.concatenate(pending)
                        pending, pending_len = [], 0
        except av.FFmpegError as exc:
            raise AudioFileError("bad_audio", f"The audio could not be decoded: {exc.strerror or exc}.") from exc
    if pending:
        yield np.concatenate(pending)
    if total == 0:
        raise AudioFileError("no_audio", "The file contains no audio samples.")


def _layout(stream: av.AudioStream, channels: int) -> str | av.AudioLayout:
    """Mono, or the stream's own layout when its channels are kept apart (checked to have ``channels``)."""
    if channels == 1:
        return "mono"
    layout = stream.codec_context.layout
    if len(layout.channels) != channels:
        raise AudioFileError("bad_audio", f"The audio has {len(layout.channels)} channel(s), not {channels}.")
    return layout


def _first_frame(container: av.container.InputContainer, stream: av.AudioStream) -> None:
    try:
        for frame in container.decode(stream):
            if frame.samples:
                return
    except av.FFmpegError as exc:
        raise AudioFileError("bad_audio", f"The audio could not be decoded: {exc.strerror or exc}.") from exc
    raise AudioFileError("no_audio", "The file contains no audio samples.")


def _frames(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame | None]:
    yield from container.decode(stream)
    yield None  # flushes the resampler
