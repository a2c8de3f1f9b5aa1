"""Encode real eval speech into the containers clients upload (FLAC, MP3, OGG/Opus, WebM), at test time.

Made with PyAV (the same FFmpeg the server decodes with), so no encoded audio is committed.
"""

import io

import av
import numpy as np

# name → (container, codec, sample rate, channels)
FORMATS = {
    "flac": ("flac", "flac", 16000, 1),
    "mp3": ("mp3", "libmp3lame", 44100, 2),
    "ogg": ("ogg", "libopus", 48000, 1),
    "webm": ("webm", "libopus", 48000, 2),
    "wav44k": ("wav", "pcm_s16le", 44100, 2),
}


class _Stream:
    """A sink that cannot seek, like a browser's MediaRecorder: the muxer cannot go back and write
    the duration into the header."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)


def encode(samples: np.ndarray, rate: int, name: str, *, streamed: bool = False) -> bytes:
    """``samples``: mono float32 at ``rate``; returns the file's bytes in format ``name`` (written as
    a stream, without a duration in the header, when ``streamed``)."""
    container_name, codec, out_rate, channels = FORMATS[name]
    sink = _Stream() if streamed else None
    buffer = sink.buffer if sink else io.BytesIO()
    layout = "stereo" if channels == 2 else "mono"
    with av.open(sink or buffer, mode="w", format=container_name) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=out_rate)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = None
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            resampled.pts = None
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
