"""An incremental Ogg demuxer (RFC 3533) for one Opus stream (RFC 7845), fed as bytes arrive.

Strict on purpose: a page whose capture pattern, version or CRC is wrong, a missing page, a second
logical stream or a codec other than Opus ends the session with a clear error instead of noise.
"""

import struct
import zlib

from transcription.codecs.base import MAX_BUFFERED_BYTES, CodecError
from transcription.codecs.opus_head import OpusHead, codec_name, parse_opus_head

CAPTURE = b"OggS"
HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segments
CONTINUED, FIRST, LAST = 0x01, 0x02, 0x04
_REVERSED_BITS = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no initial or final XOR), at zlib's speed.

    zlib's CRC-32 is the same polynomial reflected, started and ended with 0xFFFFFFFF: on bit-reversed
    bytes, with the effect of its initial value taken out (the CRC of as many zero bytes), it is Ogg's
    CRC bit-reversed."""
    reflected = zlib.crc32(data.translate(_REVERSED_BITS)) ^ zlib.crc32(bytes(len(data)))
    return int(f"{reflected:032b}"[::-1], 2)


class OggOpusDemuxer:
    """Ogg pages in, Opus packets out; ``head`` is set once the stream's OpusHead has been read."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0  # stream offset of buffer[0], for error messages
        self.serial: int | None = None
        self.next_sequence = 0
        self.ended = False
        self.partial = bytearray()  # a packet continued on the next page
        self.packets = 0  # packets completed, headers included
        self.head: OpusHead | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The audio packets completed by ``data`` (OpusHead and OpusTags are taken here)."""
        self.buffer += data
        packets: list[bytes] = []
        while (page := self._next_page()) is not None:
            packets += self._packets(*page)
        return packets

    def _next_page(self) -> tuple[int, bytes, bytes] | None:
        """(flags, segment table, body) of the next whole page, or None until it has all arrived."""
        buffer = self.buffer
        if not buffer:
            return None
        if buffer[: len(CAPTURE)] != CAPTURE[: len(buffer)]:
            raise CodecError(self._not_a_page())
        if len(buffer) < HEADER.size:
            return None
        _, version, flags, _, serial, sequence, crc, count = HEADER.unpack_from(buffer)
        if version != 0:
            raise CodecError(f"Ogg page at byte {self.position} has version {version}; only version 0 exists.")
        if len(buffer) < HEADER.size + count:
            return None
        table = bytes(buffer[HEADER.size : HEADER.size + count])
        size = HEADER.size + count + sum(table)
        if len(buffer) < size:
            return None
        page = bytearray(buffer[:size])
        page[22:26] = bytes(4)
        if ogg_crc(bytes(page)) != crc:
            raise CodecError(f"Ogg page at byte {self.position} is corrupt (its CRC does not match).")
        self._check_order(flags, serial, sequence)
        del buffer[:size]
        self.position += size
        return flags, table, bytes(page[HEADER.size + count :])

    def _not_a_page(self) -> str:
        if self.buffer.startswith(b"\x1a\x45\xdf\xa3"):
            return f"The stream switched from Ogg to WebM at byte {self.position}; send one container per session."
        return f"Expected an Ogg page at byte {self.position}, got other bytes: the Ogg stream is corrupt."

    def _check_order(self, flags: int, serial: int, sequence: int) -> None:
        if self.ended:
            raise CodecError("The Ogg stream goes on after its last page; send one stream per session.")
        if self.serial is None:
            if not flags & FIRST:
                raise CodecError("The Ogg stream does not start with its first page.")
            self.serial = serial
        elif serial != self.serial:
            raise CodecError("The Ogg stream carries more than one logical stream; send Opus alone.")
        if sequence != self.next_sequence:
            raise CodecError(f"Ogg page {self.next_sequence} is missing (page {sequence} came instead).")
        self.next_sequence += 1
        self.ended = bool(flags & LAST)

    def _packets(self, flags: int, table: bytes, body: bytes) -> list[bytes]:
        if bool(flags & CONTINUED) != bool(self.partial):
            raise CodecError("An Ogg page's continuation flag disagrees with the packet before it.")
        packets, offset = [], 0
        for lacing in table:
            self.partial += body[offset : offset + lacing]
            offset += lacing
            if len(self.partial) > MAX_BUFFERED_BYTES:
                raise CodecError(f"An Ogg packet is larger than {MAX_BUFFERED_BYTES} bytes.")
            if lacing < 255:
                packet = bytes(self.partial)
                self.partial.clear()
                if (audio := self._take(packet)) is not None:
                    packets.append(audio)
        return packets

    def _take(self, packet: bytes) -> bytes | None:
        """An audio packet, or None for a header (checked) or an empty packet."""
        index, self.packets = self.packets, self.packets + 1
        if index == 0:
            if not packet.startswith(b"OpusHead"):
                raise CodecError(f"The Ogg stream carries {codec_name(packet)}, not Opus.")
            self.head = parse_opus_head(packet)
            return None
        if index == 1:
            if not packet.startswith(b"OpusTags"):
                raise CodecError("The Ogg Opus stream's second packet is not OpusTags.")
            return None
        return packet or None
