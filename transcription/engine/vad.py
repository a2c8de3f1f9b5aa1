"""FunASR's streaming FSMN-VAD, called the way FunASR's streaming API documents it.

One model per process; one ``cache`` dict per session stream. FunASR's ``init_cache`` writes the
session's silence threshold into the shared model options before copying it into the cache, so
calls are serialised by a lock (each call is a few milliseconds).

Every FunASR model runs torch on one thread (``TORCH_THREADS``). ``AutoModel`` sets torch's thread
count to its ``ncpu`` option (default 4) when it loads *and before every generate call*, so a
``torch.set_num_threads`` of ours does not last. With 4 threads on this 2-core machine each VAD
call took 5.9 ms instead of 3.3 ms when idle, and under load its OpenMP threads waited for cores
while holding the lock: at 8 streams the engine threads spent as long waiting for that lock as
running the VAD.
"""

import logging
import threading
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CHUNK_MS = 200
SAMPLES_PER_MS = 16
TORCH_THREADS = 1  # passed to every FunASR AutoModel as ncpu (see above)
FRAME_MS = 10
IN_SPEECH_SEGMENT = 2  # funasr VadStateMachine.kVadInStateInSpeechSegment


class FsmnVad:
    def __init__(self, model_dir: Path) -> None:
        import torch
        from funasr import AutoModel

        # The VAD is tiny; keep torch from competing with the decoder for every core.
        torch.set_num_threads(TORCH_THREADS)
        self.model = AutoModel(
            model=str(model_dir),
            disable_update=True,
            disable_pbar=True,
            disable_log=True,
            device="cpu",
            ncpu=TORCH_THREADS,
        )
        self.lock = threading.Lock()

    def open_stream(self, *, endpointing_ms: int) -> "VadStream":
        return VadStream(self, endpointing_ms)


class VadStream:
    """Speech start/end detection over one session's audio, in milliseconds since the stream began."""

    def __init__(self, vad: FsmnVad, endpointing_ms: int) -> None:
        self.vad = vad
        self.endpointing_ms = endpointing_ms
        self.cache: dict = {}
        self.holds_audio = False  # fed since the last flush: a flush with nothing fed has nothing to say

    def feed(self, samples: np.ndarray, *, is_final: bool = False) -> list[tuple[int, int]]:
        """Return FunASR's segment list for this audio: [start_ms, -1], [-1, end_ms] or [start_ms, end_ms]."""
        if not len(samples):
            if not is_final or not self.holds_audio:
                return []
            # FunASR returns early on empty input; one zero sample makes it flush what it holds.
            samples = np.zeros(1, dtype=np.float32)
        with self.vad.lock:
            result = self.vad.model.generate(
                input=samples,
                cache=self.cache,
                is_final=is_final,
                chunk_size=CHUNK_MS,
                max_end_silence_time=self.endpointing_ms,
                disable_pbar=True,
            )
        self.holds_audio = not is_final
        if is_final:
            # FunASR re-initialises a flushed cache with the shared default threshold; start clean.
            self.cache = {}
        segments = result[0]["value"] if result else []
        return [(int(start), int(end)) for start, end in segments]

    def trailing_silence_ms(self) -> int:
        """Silence heard since speech last stopped, while a speech segment is still open.

        Read from FunASR's per-cache state machine (frames of 10 ms); 0 outside speech. This lets
        the session start decoding before the endpoint is confirmed.
        """
        stats = self.cache.get("stats")
        if stats is None or getattr(stats.vad_state_machine, "value", None) != IN_SPEECH_SEGMENT:
            return 0
        return int(stats.continous_silence_frame_count) * FRAME_MS
