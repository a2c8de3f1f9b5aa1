"""Opus in Ogg or WebM, decoded as it streams: the container is known by the stream's first bytes,
our demuxers take the packets out, and FFmpeg's Opus decoder (PyAV, in-process) decodes them.

FFmpeg's decoders always give 48 kHz (and drop the stream's pre-skip themselves); the session's
rate, one of Opus's own, is reached with libsoxr, as the engine resamples. A stream with more
channels than a mono session is mixed down; one with fewer than declared is refused.
"""

import av
import numpy as np
import soxr
from av.audio.codeccontext import AudioCodecContext

from transcription.codecs.base import MAX_DECODED_S_PER_MESSAGE, CodecError
from transcription.codecs.ebml import WebmOpusDemuxer
from transcription.codecs.ogg import OggOpusDemuxer
from transcription.codecs.opus_head import OpusHead

OPUS_RATE = 48000
OGG_MAGIC, WEBM_MAGIC = b"OggS", b"\x1a\x45\xdf\xa3"
DECODERS = ("libopus", "opus")  # the reference decoder where FFmpeg has it, else FFmpeg's own


def container_of(data: bytes) -> str | None:
    """ "ogg" or "webm" when ``data`` begins as one does, else None."""
    if data.startswith(OGG_MAGIC):
        return "ogg"
    return "webm" if data.startswith(WEBM_MAGIC) else None


class OpusDecoder:
    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate, self.channels = sample_rate, channels
        self.start = b""  # the first bytes, until the container can be told
        self.demuxer: OggOpusDemuxer | WebmOpusDemuxer | None = None
        self.codec: AudioCodecContext | None = None
        self.stream_channels = 0
        self.packets = 0
        self.resampler = (
            None
            if sample_rate == OPUS_RATE
            else soxr.ResampleStream(OPUS_RATE, sample_rate, channels, dtype="float32", quality="HQ")
        )

    def decode(self, data: bytes) -> bytes:
        if self.demuxer is None:
            self.start += data
            if len(self.start) < len(OGG_MAGIC):
                return b""
            data, self.start = self.start, b""
            container = container_of(data)
            if container is None:
                raise CodecError("Opus audio must come in an Ogg or WebM container; the stream begins as neither.")
            self.demuxer = OggOpusDemuxer() if container == "ogg" else WebmOpusDemuxer()
        packets = self.demuxer.feed(data)
        if self.codec is None and self.demuxer.head is not None:
            self.codec = self._open(self.demuxer.head)
        return self._decode_packets(packets)

    def flush(self) -> bytes:
        """The resampler's tail; a container cut short at the end is not an error."""
        if self.resampler is None or self.codec is None:
            return b""
        return _s16(self.resampler.resample_chunk(np.zeros((0, self.channels), np.float32), last=True))

    def _open(self, head: OpusHead) -> AudioCodecContext:
        if head.channels < self.channels:
            raise CodecError(
                f"The Opus stream has {head.channels} channel(s) but the session declared {self.channels}."
            )
        if head.channels > self.channels > 1:
            raise CodecError(f"The Opus stream has {head.channels} channels: declare 'channels' {head.channels} or 1.")
        self.stream_channels = head.channels
        for name in DECODERS:
            try:
                codec = av.CodecContext.create(name, "r")
            except (av.FFmpegError, ValueError):
                continue
            assert isinstance(codec, AudioCodecContext)
            codec.extradata = head.raw
            return codec
        raise CodecError("This server has no Opus decoder.")

    def _decode_packets(self, packets: list[bytes]) -> bytes:
        if not packets:
            return b""
        if self.codec is None:
            raise CodecError("Opus audio arrived before the stream's OpusHead.")
        pieces, samples = [], 0
        for packet in packets:
            self.packets += 1
            try:
                frames = self.codec.decode(av.Packet(packet))
            except av.FFmpegError as error:
                raise CodecError(f"Opus packet {self.packets} could not be decoded ({error.strerror}).") from None
            for frame in frames:
                pieces.append(self._interleaved(frame))
                samples += frame.samples
            if samples > MAX_DECODED_S_PER_MESSAGE * OPUS_RATE:
                raise CodecError(f"One message decoded to more than {MAX_DECODED_S_PER_MESSAGE:g} s of audio.")
        if not pieces:
            return b""
        audio = np.concatenate(pieces)
        if self.resampler is not None:
            audio = self.resampler.resample_chunk(audio)
        return _s16(audio)

    def _interleaved(self, frame: av.AudioFrame) -> np.ndarray:
        """A decoded frame as float32 (samples, session channels), mixed down where the session is mono."""
        array = frame.to_ndarray()
        array = array.T if frame.format.is_planar else array.reshape(-1, self.stream_channels)
        if array.dtype == np.int16:
            array = array.astype(np.float32) / 32768.0
        if self.channels == 1 and array.shape[1] > 1:
            array = array.mean(axis=1, keepdims=True, dtype=np.float32)
        return np.ascontiguousarray(array, dtype=np.float32)


def _s16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()
