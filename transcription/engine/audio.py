"""Audio in: PCM decoding, resampling to 16 kHz, and a buffer addressed by session sample index."""

import struct
from dataclasses import dataclass

import numpy as np
import soxr

from transcription.engine.config import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_BYTES

TARGET_RATE = 16000


class AudioFormatError(ValueError):
    """Audio bytes that do not match what the session declared; the text is shown to the client."""


def decode_pcm(data: bytes, *, encoding: str, channels: int) -> np.ndarray:
    """PCM bytes (the gateway decodes the other encodings) → mono float32 in [-1, 1]."""
    frame_bytes = SAMPLE_BYTES[encoding] * channels
    if len(data) % frame_bytes:
        raise AudioFormatError(
            f"Audio frame of {len(data)} bytes is not a whole number of {encoding} samples "
            f"({frame_bytes} bytes per sample across {channels} channel(s))."
        )
    if encoding == "pcm_s16le":
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    else:
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise AudioFormatError("Audio frame contains NaN or infinite float samples.")
        samples = np.clip(samples, -1.0, 1.0)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples


class Resampler:
    """Streaming high-quality resampler (libsoxr) that keeps its filter state across frames."""

    def __init__(self, input_rate: int) -> None:
        self.input_rate = input_rate
        self._stream = (
            None
            if input_rate == TARGET_RATE
            else soxr.ResampleStream(input_rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


class AudioBuffer:
    """The recent 16 kHz audio of a session, sliced by absolute sample index.

    Appends are cheap (a list of chunks); only the audio an open utterance may still need is kept.
    """

    def __init__(self, start: int = 0) -> None:
        self._chunks: list[np.ndarray] = []
        self._base = start  # absolute index of the first kept sample
        self.end = start  # absolute index one past the last sample

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.end += len(samples)

    def slice(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(start, self._base), min(stop, self.end)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        joined = np.concatenate(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks = [joined]
        return joined[start - self._base : stop - self._base]

    def discard_before(self, index: int) -> None:
        """Forget audio before ``index``; whole chunks only, so it is cheap to call often."""
        while self._chunks and self._base + len(self._chunks[0]) <= index:
            self._base += len(self._chunks.pop(0))


@dataclass(frozen=True)
class WavHeader:
    sample_rate: int
    channels: int
    encoding: str
    header_bytes: int
    data_bytes: int


RIFF_MAGIC = b"RIFF"


def looks_like_wav(data: bytes) -> bool:
    return data[:4] == RIFF_MAGIC and data[8:12] == b"WAVE"


def parse_wav_header(data: bytes) -> WavHeader:
    """Parse the RIFF/WAVE header a client sent as the start of its audio.

    Raises AudioFormatError with a precise reason for the truncated, absurd or unsupported headers
    that real clients (and ../shared/eval/bad) produce.
    """
    if len(data) < 12 or not looks_like_wav(data):
        raise AudioFormatError("Not a RIFF/WAVE header.")
    offset, fmt = 12, None
    while True:
        if offset + 8 > len(data):
            raise AudioFormatError("WAV header is truncated: no 'data' chunk in the first frame.")
        chunk_id, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or size > 40 or body + size > len(data):
                raise AudioFormatError(f"WAV 'fmt ' chunk has an invalid size ({size} bytes).")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("WAV 'data' chunk comes before any 'fmt ' chunk.")
            return _header_from_fmt(*fmt, header_bytes=body, data_bytes=size)
        elif body + size > len(data):
            raise AudioFormatError(
                f"WAV chunk {chunk_id!r} claims {size} bytes, more than the frame holds; no 'data' chunk found."
            )
        offset = body + size + (size & 1)


def _header_from_fmt(tag: int, channels: int, rate: int, bits: int, *, header_bytes: int, data_bytes: int) -> WavHeader:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"WAV sample rate {rate} Hz is outside the supported {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz."
        )
    if channels not in (1, 2):
        raise AudioFormatError(f"WAV has {channels} channels; mono or stereo is supported.")
    if tag in (1, 0xFFFE) and bits == 16:
        encoding = "pcm_s16le"
    elif tag in (3, 0xFFFE) and bits == 32:
        encoding = "pcm_f32le"
    elif tag in (6, 7) and bits == 8:  # G.711 A-law, μ-law
        encoding = "alaw" if tag == 6 else "mulaw"
    else:
        raise AudioFormatError(
            f"WAV format {tag} with {bits}-bit samples is not supported; send 16-bit PCM, 32-bit float or G.711."
        )
    return WavHeader(
        sample_rate=rate, channels=channels, encoding=encoding, header_bytes=header_bytes, data_bytes=data_bytes
    )
