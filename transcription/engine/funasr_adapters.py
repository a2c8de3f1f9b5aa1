"""FunASR recognizers behind the engine's recognizer interface.

- Streaming Paraformer (``paraformer-zh-streaming``): an incremental decoder. Each session stream
  owns a FunASR ``cache`` (encoder, CIF predictor and decoder state) and feeds the utterance's new
  audio as it arrives, in 600 ms chunks (``chunk_size=[0, 10, 5]``) with encoder look-back 4 and
  decoder look-back 1, as FunASR's streaming example does. The final call passes ``is_final=True``,
  which flushes the tail and resets the cache for the next utterance.
- SenseVoiceSmall (``sensevoice-small``): non-autoregressive, fast enough to re-decode the whole
  utterance for partials like Whisper; it reports the language it heard as a ``<|zh|>`` tag.

Both models are loaded with ``funasr.AutoModel`` from a local folder (``disable_update=True``; no
hub). FunASR's ``generate`` merges its call options into the model's shared kwargs, so calls on
one model are serialised by a lock.
"""

import logging
import re
import threading
from pathlib import Path

import numpy as np

from transcription.engine.config import SessionConfig
from transcription.engine.recognizer import LanguageState, Transcription
from transcription.engine.registry import AUTO, SENSEVOICE_LANGUAGES
from transcription.engine.text import join_pieces, output_text
from transcription.engine.vad import TORCH_THREADS

logger = logging.getLogger(__name__)

CHUNK_SIZE = [0, 10, 5]  # [0, 10, 5]: 600 ms chunks with 300 ms look-ahead
ENCODER_CHUNK_LOOK_BACK = 4
DECODER_CHUNK_LOOK_BACK = 1
CHUNK_SAMPLES = CHUNK_SIZE[1] * 960  # 960 samples = 60 ms at 16 kHz
_TAG = re.compile(r"<\|([^|]*)\|>")


def _auto_model(model_dir: Path, device: str):
    from funasr import AutoModel

    return AutoModel(
        model=str(model_dir),
        disable_update=True,
        disable_pbar=True,
        disable_log=True,
        device=device,
        ncpu=TORCH_THREADS,  # FunASR resets torch's threads to this on every call; see vad.py
    )


class ParaformerStreamingRecognizer:
    def __init__(self, model_dir: Path, *, device: str, name: str = "paraformer-zh-streaming") -> None:
        self.model = _auto_model(model_dir, device)
        self.name = name
        self.lock = threading.Lock()

    def open_stream(self, config: SessionConfig) -> "ParaformerStream":
        return ParaformerStream(self)

    def feed(self, audio: np.ndarray, cache: dict, *, is_final: bool) -> str:
        """Feed audio to one session's cache; returns the text decoded from it."""
        with self.lock:
            result = self.model.generate(
                input=audio.astype(np.float32),
                cache=cache,
                is_final=is_final,
                chunk_size=CHUNK_SIZE,
                encoder_chunk_look_back=ENCODER_CHUNK_LOOK_BACK,
                decoder_chunk_look_back=DECODER_CHUNK_LOOK_BACK,
                disable_pbar=True,
            )
        return str(result[0].get("text", "")) if result else ""


class ParaformerStream:
    """One session's decoder state; ``utterance`` tells when a new utterance begins."""

    incremental = True
    forces_prefix = False

    def remember(self, final: str, language: str | None) -> None:
        """FunASR's models take no text context."""

    def __init__(self, recognizer: ParaformerStreamingRecognizer) -> None:
        self.recognizer = recognizer
        self.utterance: int | None = None
        self.cache: dict = {}
        self.fed = 0  # samples of the current utterance already given to the model
        self.text = ""

    def decode(
        self,
        audio: np.ndarray,
        *,
        utterance: int,
        final: bool,
        beam_size: int | None,
        thrifty: bool = False,
        prefix: str = "",
    ) -> Transcription:
        if utterance != self.utterance:
            self._reset(utterance)
        new = audio[self.fed :]
        if not final:
            new = new[: len(new) // CHUNK_SAMPLES * CHUNK_SAMPLES]  # whole chunks only; the rest waits
        if len(new) or final:
            self.text = join_pieces(self.text, self.recognizer.feed(new, self.cache, is_final=final))
            self.fed += len(new)
        result = Transcription(output_text(self.text, "zh"), "zh")
        if final:
            self._reset(None)
        return result

    def _reset(self, utterance: int | None) -> None:
        self.utterance, self.cache, self.fed, self.text = utterance, {}, 0, ""


class SenseVoiceRecognizer:
    def __init__(self, model_dir: Path, *, device: str, name: str = "sensevoice-small") -> None:
        self.model = _auto_model(model_dir, device)
        self.name = name
        self.lock = threading.Lock()

    def open_stream(self, config: SessionConfig) -> "SenseVoiceStream":
        return SenseVoiceStream(self, config)

    def recognize(self, audio: np.ndarray, *, language: str | None) -> Transcription:
        if len(audio) < 1600:
            return Transcription("", language)
        with self.lock:
            result = self.model.generate(
                input=audio.astype(np.float32), cache={}, language=language or AUTO, use_itn=True, disable_pbar=True
            )
        raw = str(result[0].get("text", "")) if result else ""
        return parse_sensevoice(raw, requested=language)


def parse_sensevoice(raw: str, *, requested: str | None) -> Transcription:
    """``<|zh|><|NEUTRAL|><|Speech|><|withitn|>欢迎…`` → text and language (the tags are dropped)."""
    tags = _TAG.findall(raw)
    heard = next((t for t in tags if t in SENSEVOICE_LANGUAGES and t != AUTO), None)
    language = requested or heard
    text = " ".join(_TAG.sub(" ", raw).split())
    # The tag is the model's own answer; a missing one (noise, "nospeech") does not fix the language.
    return Transcription(output_text(text, language), language, 1.0 if (requested or heard) else 0.0)


class SenseVoiceStream:
    incremental = False
    forces_prefix = False

    def remember(self, final: str, language: str | None) -> None:
        """FunASR's models take no text context."""

    def __init__(self, recognizer: SenseVoiceRecognizer, config: SessionConfig) -> None:
        self.recognizer = recognizer
        self.language = LanguageState(config.language)

    def decode(
        self,
        audio: np.ndarray,
        *,
        utterance: int,
        final: bool,
        beam_size: int | None,
        thrifty: bool = False,
        prefix: str = "",
    ) -> Transcription:
        result = self.recognizer.recognize(audio, language=self.language.fixed)
        self.language.observe(result, final=final)
        return result
