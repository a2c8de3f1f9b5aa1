"""G.711 μ-law and A-law (telephone audio): one byte per sample, decoded through a 256-entry table.

The tables follow ITU-T G.711 as its reference decoders do (and FFmpeg's pcm_mulaw/pcm_alaw, which
the tests compare against bit for bit): 14-bit μ-law and 13-bit A-law values scaled to 16 bits.
"""

import numpy as np

from transcription.codecs.base import CodecError


def _mulaw(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def _alaw(code: int) -> int:
    code ^= 0x55
    mantissa, segment = code & 0x0F, (code >> 4) & 0x07
    magnitude = (2 * mantissa + 33) << (segment + 2) if segment else (2 * mantissa + 1) << 3
    return magnitude if code & 0x80 else -magnitude


MULAW_TABLE = np.array([_mulaw(c) for c in range(256)], dtype="<i2")
ALAW_TABLE = np.array([_alaw(c) for c in range(256)], dtype="<i2")
TABLES = {"mulaw": MULAW_TABLE, "alaw": ALAW_TABLE}


class G711Decoder:
    """Each message must hold whole samples (one byte per channel), as PCM messages must."""

    def __init__(self, law: str, channels: int) -> None:
        self.law, self.table, self.channels = law, TABLES[law], channels

    def decode(self, data: bytes) -> bytes:
        if len(data) % self.channels:
            raise CodecError(
                f"Audio frame of {len(data)} bytes is not a whole number of {self.law} samples "
                f"({self.channels} bytes each, {self.channels} channel(s))."
            )
        return self.table[np.frombuffer(data, dtype=np.uint8)].tobytes()

    def flush(self) -> bytes:
        return b""
