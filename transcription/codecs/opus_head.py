"""Opus's identification header (RFC 7845 §5.1), in Ogg's first packet or WebM's CodecPrivate."""

import struct
from dataclasses import dataclass

from transcription.codecs.base import CodecError

# How other codecs' first packets begin, to name them in the error.
_SIGNATURES = ((b"\x01vorbis", "Vorbis"), (b"\x7fFLAC", "FLAC"), (b"Speex   ", "Speex"), (b"\x80theora", "Theora"))


@dataclass(frozen=True)
class OpusHead:
    raw: bytes  # the header itself: the decoder's extradata
    channels: int
    pre_skip: int  # samples at 48 kHz to drop from the start
    mapping_family: int


def parse_opus_head(data: bytes) -> OpusHead:
    if len(data) < 19 or not data.startswith(b"OpusHead"):
        raise CodecError("The Opus stream's identification header (OpusHead) is missing or truncated.")
    version, channels, pre_skip, _, _, family = struct.unpack_from("<BBHIhB", data, 8)
    if version >> 4:
        raise CodecError(f"OpusHead version {version} is not supported.")
    if channels == 0 or (family == 0 and channels > 2):
        raise CodecError(f"OpusHead declares {channels} channels with mapping family {family}.")
    return OpusHead(bytes(data), channels, pre_skip, family)


def codec_name(first_packet: bytes) -> str:
    return next((name for prefix, name in _SIGNATURES if first_packet.startswith(prefix)), "a codec other than Opus")
