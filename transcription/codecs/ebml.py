"""An incremental WebM (Matroska/EBML) demuxer for the Opus track, as MediaRecorder writes it.

MediaRecorder streams a Segment and Clusters of unknown size (the recorder cannot seek back to
write them): an unknown-size element ends where an element that cannot be its child begins.
Elements are read whole only where they are small (headers, Tracks, blocks, at most
MAX_BUFFERED_BYTES); others (Cues, Tags, Void...) are skipped as they stream past. An element this
reader does not know is an error: garbage is refused, not skipped.
"""

from enum import Enum

from transcription.codecs.base import MAX_BUFFERED_BYTES, CodecError
from transcription.codecs.opus_head import OpusHead, parse_opus_head

EBML, SEGMENT, CLUSTER, TRACKS, TRACK_ENTRY = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0x1654AE6B, 0xAE
TRACK_NUMBER, TRACK_TYPE, CODEC_ID, CODEC_PRIVATE = 0xD7, 0x83, 0x86, 0x63A2
SIMPLE_BLOCK, BLOCK_GROUP, BLOCK, DOC_TYPE = 0xA3, 0xA0, 0xA1, 0x4282
AUDIO_TRACK = 2


class Act(Enum):
    ENTER = "enter"  # a master element read child by child
    READ = "read"  # read whole, then used
    SKIP = "skip"  # passed over as it streams by


_ANYWHERE = {0xEC: Act.SKIP, 0xBF: Act.SKIP}  # Void, CRC-32
CHILDREN: dict[int | None, dict[int, Act]] = {
    None: {EBML: Act.READ, SEGMENT: Act.ENTER},
    SEGMENT: {CLUSTER: Act.ENTER, TRACKS: Act.READ, **_ANYWHERE, **dict.fromkeys(
        (0x114D9B74, 0x1549A966, 0x1C53BB6B, 0x1254C367, 0x1043A770, 0x1941A469), Act.SKIP
    )},  # SeekHead, Info, Cues, Tags, Chapters, Attachments
    CLUSTER: {SIMPLE_BLOCK: Act.READ, BLOCK_GROUP: Act.READ, **_ANYWHERE,
              **dict.fromkeys((0xE7, 0x5854, 0xA7, 0xAB, 0xAF), Act.SKIP)},  # Timecode, SilentTracks, Position...
}  # fmt: skip


def read_vint(data: bytes | bytearray, offset: int, *, keep_marker: bool = False) -> tuple[int, int] | None:
    """(value, length) of the variable-size integer at ``offset``; None if it has not all arrived.
    An all-ones size (unknown size) comes back as -1."""
    if offset >= len(data):
        return None
    first = data[offset]
    if first == 0:
        raise CodecError("Invalid WebM: a variable-size integer longer than 8 bytes (the stream is corrupt).")
    length = 9 - first.bit_length()
    if offset + length > len(data):
        return None
    value = int.from_bytes(data[offset : offset + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    return (-1 if value == (1 << (7 * length)) - 1 else value), length


def elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (id, body) children of a whole master element's body."""
    out, offset = [], 0
    while offset < len(data):
        ident, size = read_vint(data, offset, keep_marker=True), None
        if ident is not None:
            size = read_vint(data, offset + ident[1])
        if ident is None or size is None or size[0] < 0 or offset + ident[1] + size[1] + size[0] > len(data):
            raise CodecError("Invalid WebM: an element overruns the element that holds it.")
        start = offset + ident[1] + size[1]
        out.append((ident[0], data[start : start + size[0]]))
        offset = start + size[0]
    return out


class WebmOpusDemuxer:
    """WebM bytes in, the Opus track's packets out; ``head`` is its CodecPrivate (OpusHead)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0  # stream offset of buffer[0]
        self.open: list[tuple[int, int | None]] = []  # (id, end offset or None: unknown size) of entered masters
        self.skipping = 0
        self.started = False  # the EBML header was read
        self.track: int | None = None
        self.head: OpusHead | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        packets: list[bytes] = []
        while self.buffer:
            if self.skipping:
                gone = min(self.skipping, len(self.buffer))
                self._consume(gone)
                self.skipping -= gone
                continue
            while self.open and self.open[-1][1] is not None and self.position >= (self.open[-1][1] or 0):
                self.open.pop()
            element = self._element_header()
            if element is None:
                break
            ident, size, header = element
            act = self._place(ident)
            if size < 0 and act is not Act.ENTER:
                raise CodecError(f"WebM element {ident:#x} has an unknown size; only Segment and Cluster may.")
            if act is Act.ENTER:
                self._consume(header)
                self.open.append((ident, None if size < 0 else self.position + size))
            elif act is Act.SKIP:
                self._consume(header)
                self.skipping = size
            else:
                if size > MAX_BUFFERED_BYTES:
                    raise CodecError(f"WebM element {ident:#x} of {size} bytes is over {MAX_BUFFERED_BYTES}.")
                if len(self.buffer) < header + size:
                    break
                body = bytes(self.buffer[header : header + size])
                self._consume(header + size)
                packets += self._use(ident, body)
        return packets

    def _consume(self, count: int) -> None:
        del self.buffer[:count]
        self.position += count

    def _element_header(self) -> tuple[int, int, int] | None:
        """(id, size or -1, header length) of the element at the buffer's start; None until it arrived."""
        if self.buffer.startswith(b"OggS"):
            raise CodecError(f"The stream switched from WebM to Ogg at byte {self.position}; send one container.")
        ident = read_vint(self.buffer, 0, keep_marker=True)
        if ident is not None and ident[1] > 4:
            raise CodecError(f"Invalid WebM at byte {self.position}: not an element.")
        size = read_vint(self.buffer, ident[1]) if ident is not None else None
        if ident is None or size is None:
            return None
        return ident[0], size[0], ident[1] + size[1]

    def _place(self, ident: int) -> Act:
        """What to do with an element here; an unknown-size master ends at an element it cannot hold."""
        if ident == EBML and self.started:
            raise CodecError("The stream is not one WebM stream: a second one starts; send one stream per session.")
        while True:
            parent, end = self.open[-1] if self.open else (None, 0)
            act = CHILDREN[parent].get(ident)
            if act is not None:
                break
            if parent is None or end is not None:
                where = f"in element {parent:#x}" if parent is not None else "at the top level"
                raise CodecError(f"Unexpected WebM element {ident:#x} {where} at byte {self.position}.")
            self.open.pop()
        if parent is None and ident != EBML and not self.started:
            raise CodecError("The stream is not WebM: it does not begin with an EBML header.")
        return act

    def _use(self, ident: int, body: bytes) -> list[bytes]:
        if ident == EBML:
            doc_type = dict(elements(body)).get(DOC_TYPE, b"").rstrip(b"\0")
            if doc_type not in (b"webm", b"matroska"):
                raise CodecError(f"EBML document type {doc_type!r} is not WebM.")
            self.started = True
            return []
        if ident == TRACKS:
            self._tracks(body)
            return []
        if ident == BLOCK_GROUP:
            return [p for child, data in elements(body) if child == BLOCK for p in self._block(data)]
        return self._block(body)

    def _tracks(self, body: bytes) -> None:
        if self.track is not None:
            raise CodecError("The WebM stream declares its tracks twice.")
        for ident, entry in elements(body):
            fields = dict(elements(entry)) if ident == TRACK_ENTRY else {}
            codec = fields.get(CODEC_ID, b"").rstrip(b"\0").decode("ascii", "replace")
            if int.from_bytes(fields.get(TRACK_TYPE, b""), "big") == AUDIO_TRACK or codec.startswith("A_"):
                if codec != "A_OPUS":
                    raise CodecError(f"The WebM audio track is {codec or 'of no codec'}, not Opus (A_OPUS).")
                self.track = int.from_bytes(fields.get(TRACK_NUMBER, b""), "big")
                self.head = parse_opus_head(fields.get(CODEC_PRIVATE, b""))
                return
        raise CodecError("The WebM stream has no audio track.")

    def _block(self, data: bytes) -> list[bytes]:
        """The frames of a (Simple)Block of the Opus track (others' are passed over)."""
        if self.track is None:
            raise CodecError("WebM audio arrived before the stream's Tracks.")
        track = read_vint(data, 0)
        if track is None or len(data) < track[1] + 3:
            raise CodecError("Invalid WebM: a truncated block.")
        if track[0] != self.track:
            return []
        payload = data[track[1] + 3 :]
        lacing = (data[track[1] + 2] >> 1) & 0x03
        return [payload] if lacing == 0 else unlace(payload, lacing)


def unlace(payload: bytes, lacing: int) -> list[bytes]:
    """The frames of a laced block: Xiph (1), fixed-size (2) or EBML (3) lacing."""
    if not payload:
        raise CodecError("Invalid WebM: a laced block without its frame count.")
    count, offset, sizes = payload[0] + 1, 1, []
    if lacing == 2:
        if (len(payload) - 1) % count:
            raise CodecError("Invalid WebM: fixed-size lacing that does not divide the block.")
        sizes = [(len(payload) - 1) // count] * (count - 1)
    for i in range(count - 1 if lacing != 2 else 0):
        if lacing == 1:
            size = 0
            while offset < len(payload) and payload[offset] == 255:
                size, offset = size + 255, offset + 1
            if offset >= len(payload):
                raise CodecError("Invalid WebM: truncated Xiph lacing.")
            size, offset = size + payload[offset], offset + 1
        else:
            number = read_vint(payload, offset)
            if number is None or number[0] < 0:
                raise CodecError("Invalid WebM: truncated EBML lacing.")
            bias = 0 if i == 0 else (1 << (7 * number[1] - 1)) - 1
            size, offset = number[0] - bias + (sizes[-1] if i else 0), offset + number[1]
        sizes.append(size)
    frames = []
    for size in sizes:
        if size < 0 or offset + size > len(payload):
            raise CodecError("Invalid WebM: a laced frame overruns its block.")
        frames.append(payload[offset : offset + size])
        offset += size
    return [*frames, payload[offset:]]
