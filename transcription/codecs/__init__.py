"""Wire decoders: what a client sends in a compressed or telephone encoding, as PCM on arrival.

The gateway holds one decoder per connection (``open_decoder``) and decodes each audio message
before anything else looks at it, so limits, metering (decoded audio seconds), pacing, failover
replay, resume and the engine keep seeing PCM (``SessionConfig.pcm_encoding``). Django-free.
"""

from transcription.codecs.base import MAX_BUFFERED_BYTES, MAX_DECODED_S_PER_MESSAGE, CodecError, WireDecoder
from transcription.codecs.g711 import G711Decoder
from transcription.codecs.opus import OpusDecoder, container_of
from transcription.engine.config import SAMPLE_BYTES, SessionConfig

__all__ = [
    "MAX_BUFFERED_BYTES",
    "MAX_DECODED_S_PER_MESSAGE",
    "CodecError",
    "WireDecoder",
    "container_of",
    "open_decoder",
    "wire_frame_bytes",
]


def open_decoder(config: SessionConfig) -> WireDecoder | None:
    """A fresh decoder for a session's encoding; None where the client sends PCM already."""
    if config.encoding in ("mulaw", "alaw"):
        return G711Decoder(config.encoding, config.channels)
    if config.encoding == "opus":
        return OpusDecoder(config.sample_rate, config.channels)
    return None


def wire_frame_bytes(encoding: str, channels: int) -> int:
    """The unit a client's bytes come in: one sample across the channels, or any byte of a container (opus)."""
    return SAMPLE_BYTES[encoding] * channels if encoding in SAMPLE_BYTES else 1
