"""Eval audio encoded as clients send it, in memory with PyAV: Opus in Ogg or WebM, G.711 (no audio is committed)."""

import io
import struct

import av
import numpy as np
import soxr
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream


def _frames(samples: np.ndarray, rate: int, layout: str, size: int = 960):
    """float32 (channels, n) → AudioFrames of ``size`` samples."""
    for i in range(0, samples.shape[1], size):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i : i + size]), format="fltp", layout=layout)
        frame.sample_rate = rate
        yield frame


def encode_opus(
    audio: np.ndarray, container: str, *, rate: int = 48000, bitrate: int = 32000, source_rate: int = 16000
) -> bytes:
    """Mono or (n, 2) stereo float32 audio at ``source_rate`` → Opus in ``container`` ("ogg" or "webm"),
    as a recorder makes it: resampled to ``rate`` first, 20 ms packets."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio if rate == source_rate else soxr.resample(audio, source_rate, rate, "HQ").astype(np.float32)
    planar = audio[None, :] if audio.ndim == 1 else audio.T
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream("libopus", rate=rate, layout=layout)
        stream.bit_rate = bitrate
        for frame in _frames(planar, rate, layout):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def encode_vorbis_ogg(audio: np.ndarray, rate: int = 16000) -> bytes:
    """A codec other than Opus in Ogg (FFmpeg's own Vorbis encoder, which is stereo only)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("vorbis", rate=rate, layout="stereo", options={"strict": "experimental"})
        for frame in _frames(np.stack([audio, audio]).astype(np.float32), rate, "stereo", 1024):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def encode_g711(audio: np.ndarray, law: str, *, rate: int = 8000, source_rate: int = 16000) -> bytes:
    """float32 mono audio → G.711 ("mulaw" or "alaw") bytes at ``rate``, by FFmpeg's encoder."""
    audio = soxr.resample(audio, source_rate, rate, "HQ") if rate != source_rate else audio
    s16 = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    codec = av.CodecContext.create(f"pcm_{law}", "w")
    assert isinstance(codec, AudioCodecContext)
    codec.sample_rate, codec.layout, codec.format = rate, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(s16[None, :], format="s16", layout="mono")
    frame.sample_rate = rate
    return b"".join(bytes(p) for p in codec.encode(frame))


def _vint(data: bytes, offset: int) -> tuple[int, int]:
    length = 9 - data[offset].bit_length()
    return int.from_bytes(data[offset : offset + length], "big"), length


UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def webm_as_recorded(data: bytes) -> bytes:
    """A WebM file rewritten as MediaRecorder streams it: Segment and Clusters of unknown size.

    Top-level and Segment children are copied as they are, except those two headers."""
    out, offset = bytearray(), 0

    def element(at: int) -> tuple[int, int, int]:
        ident, id_len = _vint(data, at)
        size, size_len = _vint(data, at + id_len)
        return ident, id_len + size_len, size & ((1 << (7 * size_len)) - 1)

    while offset < len(data):
        ident, header, size = element(offset)
        if ident != 0x18538067:
            out += data[offset : offset + header + size]
            offset += header + size
            continue
        out += data[offset : offset + 4] + UNKNOWN_SIZE
        child, end = offset + header, offset + header + size
        while child < end:
            ident, header, size = element(child)
            if ident == 0x1F43B675:
                out += data[child : child + 4] + UNKNOWN_SIZE + data[child + header : child + header + size]
            elif ident not in (0x1C53BB6B, 0x114D9B74):  # Cues and SeekHead point at offsets that moved
                out += data[child : child + header + size]
            child += header + size
        offset = end
    return bytes(out)


def webm_element_starts(data: bytes) -> list[int]:
    """Where each element begins (inside Segment and Clusters too), known sizes or not."""
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        ident, id_len = _vint(data, offset)
        size, size_len = _vint(data, offset + id_len)
        header = id_len + size_len
        offset += header if ident in (0x18538067, 0x1F43B675) else header + (size & ((1 << (7 * size_len)) - 1))
    return starts


def ogg_page_starts(data: bytes) -> list[int]:
    starts, offset = [], 0
    while offset < len(data):
        starts.append(offset)
        count = data[offset + 26]
        offset += 27 + count + sum(data[offset + 27 : offset + 27 + count])
    return starts


def _reference_ogg_crc(data: bytes) -> int:
    """Ogg's CRC bit by bit, as RFC 3533 describes it (independent of the server's fast one)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def ogg_page(packets: list[bytes], *, sequence: int, flags: int = 0) -> bytes:
    """One Ogg page holding whole ``packets`` (each under 255 bytes), with its CRC."""
    return ogg_raw_page(bytes(len(p) for p in packets), b"".join(packets), sequence=sequence, flags=flags)


def ogg_raw_page(table: bytes, body: bytes, *, sequence: int, flags: int = 0, serial: int = 1) -> bytes:
    """One Ogg page of a segment table and a body as given, with its CRC."""
    page = b"OggS" + struct.pack("<BBqIIIB", 0, flags, 0, serial, sequence, 0, len(table)) + table + body
    return page[:22] + struct.pack("<I", _reference_ogg_crc(page)) + page[26:]


def opus_head(channels: int = 1, pre_skip: int = 312) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, 48000, 0, 0)


def ogg_opus_of_packets(packets: list[bytes], per_page: int = 200) -> bytes:
    """An Ogg Opus stream of hand-made packets (headers first), ``per_page`` packets a page."""
    pages = [ogg_page([opus_head()], sequence=0, flags=0x02), ogg_page([b"OpusTags" + bytes(8)], sequence=1)]
    for i in range(0, len(packets), per_page):
        pages.append(ogg_page(packets[i : i + per_page], sequence=len(pages)))
    return b"".join(pages)


def g711_wav(audio: np.ndarray, law: str, *, rate: int = 8000) -> bytes:
    """A G.711 WAV file (format 7 μ-law, 6 A-law) of 16 kHz float32 ``audio``, by FFmpeg's muxer."""
    s16 = (np.clip(soxr.resample(audio, 16000, rate, "HQ"), -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream(f"pcm_{law}", rate=rate, layout="mono")
        assert isinstance(stream, AudioStream)
        frame = av.AudioFrame.from_ndarray(s16[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()
