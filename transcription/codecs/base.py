"""What every wire decoder shares: its contract, its error and the bounds a client cannot exceed."""

from typing import Protocol

# Undecoded bytes a decoder may hold for one piece of a container (an Ogg packet, a WebM element):
# far above what a recorder writes (a page is at most ~64 KiB, a block a few KiB), and still bounded.
MAX_BUFFERED_BYTES = 1024 * 1024
# Decoded audio one client message may give. A few bytes of Opus can stand for 120 ms of audio, so
# without it a 64 KiB message could decode to an hour; 30 s is far above a 1 s frame at any bitrate.
MAX_DECODED_S_PER_MESSAGE = 30.0


class CodecError(ValueError):
    """The client's bytes are not the audio it declared, or are corrupt; the text is shown to the client."""


class WireDecoder(Protocol):
    """Turns one connection's bytes, as they come, into interleaved pcm_s16le of the session's rate
    and channels: the gateway decodes on arrival, so limits, metering, replay and the engine see PCM."""

    def decode(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes:
        """What the decoder still holds once the client says the stream ended."""
        ...
