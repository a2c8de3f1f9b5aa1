"""WAV reading for the client: any PCM or float WAV, mixed down to mono 16-bit, checked.

Done by hand on the RIFF chunks because `wave` rejects IEEE-float files and trusts chunk sizes.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_FRAME_BYTES = 64 * 1024
MAX_CHANNELS = 8  # the most channels the server transcribes apart (multichannel)
MIN_FRAME_MS = 20

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_PCM_DTYPES: dict[int, np.dtype] = {8: np.dtype("u1"), 16: np.dtype("<i2"), 32: np.dtype("<i4")}
_FLOAT_DTYPES: dict[int, np.dtype] = {32: np.dtype("<f4"), 64: np.dtype("<f8")}


class WavError(ValueError):
    """The file is not a WAV this client can send; the message says why, in one line."""


@dataclass(frozen=True)
class WavAudio:
    """16-bit audio at the file's own rate: exactly what is sent as pcm_s16le. Mono (a 1-D array)
    unless read with ``keep_channels``: then frames of interleaved channels, shape (frames, channels)."""

    sample_rate: int
    samples: np.ndarray  # int16: (frames,) mono, or (frames, channels)
    source_channels: int = 1
    source_format: str = "pcm_s16le"

    @property
    def channels(self) -> int:
        """Channels sent: 1 for mixed-down audio."""
        return int(self.samples.shape[1]) if self.samples.ndim == 2 else 1

    @classmethod
    def from_float(cls, samples: np.ndarray, sample_rate: int) -> WavAudio:
        """Wrap float audio in [-1, 1] (e.g. a concatenated benchmark session)."""
        return cls(sample_rate, _float_to_int16(np.asarray(samples, dtype=np.float64)), 1, "float")

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


def _float_to_int16(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


def _parse_chunks(data: bytes) -> tuple[bytes, bytes]:
    """Walk the RIFF chunks and return (fmt, data) payloads, refusing any size that lies."""
    if len(data) < 12:
        raise WavError(f"file too short for a WAV header ({len(data)} bytes)")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: bytes | None = None
    payload: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        name = chunk_id.decode("latin-1")
        body_start, remaining = pos + 8, len(data) - pos - 8
        if size > remaining:
            if chunk_id != b"data" or fmt is None:
                raise WavError(f"chunk {name!r} claims {size} bytes but only {remaining} remain")
            logger.warning("data chunk truncated: claims %d bytes, %d present", size, remaining)
            size = remaining
        if chunk_id == b"fmt ":
            fmt = data[body_start : body_start + size]
        elif chunk_id == b"data" and payload is None:
            payload = data[body_start : body_start + size]
        pos = body_start + size + (size & 1)
    if fmt is None:
        raise WavError("no 'fmt ' chunk")
    if payload is None:
        raise WavError("no 'data' chunk")
    return fmt, payload


def _decode(fmt: bytes, payload: bytes, keep_channels: bool = False) -> WavAudio:
    if len(fmt) < 16:
        raise WavError(f"'fmt ' chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if not 1 <= channels <= 32:
        raise WavError(f"implausible channel count {channels}")
    if not 1000 <= rate <= 384000:
        raise WavError(f"implausible sample rate {rate} Hz")
    if tag == _WAVE_FORMAT_PCM and bits in (*_PCM_DTYPES, 24):
        kind = f"pcm_{'u' if bits == 8 else 's'}{bits}le"
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and bits in _FLOAT_DTYPES:
        kind = f"float{bits}"
    else:
        raise WavError(f"unsupported encoding (format tag {tag:#06x}, {bits} bits per sample)")
    if block_align != channels * bits // 8:
        raise WavError(f"block align {block_align} does not match {channels} x {bits}-bit")
    n_frames = len(payload) // block_align
    if n_frames == 0:
        raise WavError("no audio samples in the file")
    raw = payload[: n_frames * block_align]
    if kind == "pcm_s16le" and (channels == 1 or keep_channels):
        if channels > 1:
            return WavAudio(rate, np.frombuffer(raw, dtype="<i2").reshape(n_frames, channels).copy(), channels, kind)
        samples = np.frombuffer(raw, dtype="<i2").copy()
        return WavAudio(rate, samples, channels, kind)
    if bits == 24:
        b = np.frombuffer(raw, dtype="u1").reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8
        x = ints.astype(np.float64) / 8388608.0
    elif tag == _WAVE_FORMAT_IEEE_FLOAT:
        x = np.frombuffer(raw, dtype=_FLOAT_DTYPES[bits]).astype(np.float64)
    elif bits == 8:
        x = (np.frombuffer(raw, dtype="u1").astype(np.float64) - 128.0) / 128.0
    else:
        x = np.frombuffer(raw, dtype=_PCM_DTYPES[bits]).astype(np.float64) / float(2 ** (bits - 1))
    frames = x.reshape(n_frames, channels)
    if keep_channels and channels > 1:
        return WavAudio(rate, _float_to_int16(frames), channels, kind)
    return WavAudio(rate, _float_to_int16(frames.mean(axis=1)), channels, kind)


def read_wav(path: str | os.PathLike[str], *, keep_channels: bool = False) -> WavAudio:
    """Read a PCM (8/16/24/32-bit) or IEEE-float WAV as 16-bit, mixed down to mono unless
    ``keep_channels`` (then each channel is kept, for a multichannel session).

    Raises WavError with a one-line reason for anything malformed or empty.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WavError(f"cannot read the file: {exc.strerror or exc}") from exc
    return _decode(*_parse_chunks(data), keep_channels=keep_channels)


def check_sendable(audio: WavAudio, chunk_ms: int) -> None:
    """Refuse, before connecting, what the server would reject (rate, frame size)."""
    if not MIN_SAMPLE_RATE <= audio.sample_rate <= MAX_SAMPLE_RATE:
        raise WavError(
            f"sample rate {audio.sample_rate} Hz is outside the {MIN_SAMPLE_RATE}-"
            f"{MAX_SAMPLE_RATE} Hz that the server accepts; resample the file first"
        )
    if not MIN_FRAME_MS <= chunk_ms <= 1000:
        raise WavError(f"--chunk-ms must be between {MIN_FRAME_MS} and 1000, not {chunk_ms}")
    if audio.channels > MAX_CHANNELS:
        raise WavError(f"{audio.channels} channels: the server transcribes at most {MAX_CHANNELS} apart")
    if frame_samples(audio.sample_rate, chunk_ms) * 2 * audio.channels > MAX_FRAME_BYTES:
        limit = MAX_FRAME_BYTES
        raise WavError(
            f"{chunk_ms} ms at {audio.sample_rate} Hz x {audio.channels} channels exceeds {limit} bytes per frame"
        )


def frame_samples(sample_rate: int, chunk_ms: int) -> int:
    """Samples per frame of `chunk_ms`; the benchmark uses it to know which frame held a sample."""
    return max(1, round(sample_rate * chunk_ms / 1000))
