"""Whisper decoding through faster-whisper (CTranslate2), one model shared by every session."""

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Whisper's own rule for "this window is not speech": both a high no-speech probability and a
# low average log-probability. Keeps noise that VAD let through from turning into words.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0


class WhisperRecognizer:
    def __init__(self, model_dir: Path, *, device: str, compute_type: str, cpu_threads: int, beam_size: int) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(
            str(model_dir), device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )
        self.beam_size = beam_size
        self.name = model_dir.name

    def transcribe(self, audio: np.ndarray, *, language: str, beam_size: int | None = None) -> str:
        """Text of one utterance (16 kHz float32); empty when Whisper judges it not to be speech."""
        if len(audio) < 1600:  # under 0.1 s: nothing Whisper can use
            return ""
        segments, _ = self.model.transcribe(
            audio,
            language=language,
            beam_size=beam_size or self.beam_size,
            temperature=0.0,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
        )
        words = [
            s.text.strip() for s in segments if not (s.no_speech_prob > NO_SPEECH_PROB and s.avg_logprob < LOW_LOGPROB)
        ]
        return " ".join(w for w in words if w)
