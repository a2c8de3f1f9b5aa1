"""Recognizers behind one interface, and Whisper through faster-whisper (CTranslate2).

A recognizer is loaded once per process and shared. Each session opens a *stream* on it that
holds what is per session: the requested or detected language, word timings, prompt, and for
streaming models their decoder cache. The session calls ``stream.decode(audio, ...)`` with the
audio of the open utterance from its start; an ``incremental`` stream consumes only the audio it
has not seen yet, a non-incremental one re-decodes it all.
"""

import functools
import logging
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from transcription import instruments
from transcription.engine import guard
from transcription.engine.batching import BatchSettings, DecodeBatcher, DecodeRequest
from transcription.engine.config import SessionConfig
from transcription.engine.context import Context, echoes, shares_phrase
from transcription.engine.registry import AUTO
from transcription.engine.stabilizer import continue_from
from transcription.engine.text import fix_digit_grouping, has_cjk, join_pieces, output_text

if TYPE_CHECKING:
    from faster_whisper.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Whisper's own rule for "this window is not speech": both a high no-speech probability and a
# low average log-probability. Keeps noise that VAD let through from turning into words.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
# With "auto", a final whose language was detected at least this surely fixes the session's language.
LOCK_LANGUAGE_PROB = 0.5
SAMPLE_RATE = 16000
FRAMES_PER_S = 100  # Whisper's mel frames
MIN_FITTED_S, MAX_FITTED_S = 10, 30  # encoder window bounds for fitted decoding (see _recognize_fitted)
FIT_FINALS_FROM_S = 4.0  # finals shorter than this are decoded with the full 30 s window
# ... unless the decode threads are busy (``thrifty``): then a 15 s window, ~1/2 the CPU, which on
# ../shared/eval cost one word in 137 (bench.models: WER 4.4 % vs 3.6 %; 12 s cost two).
THRIFTY_SHORT_FINAL_WINDOW_S = 15
TOKENS_PER_S = 8  # fitted decoding's token budget per second of audio: fast speech is ~4
BATCH_PROMPT_STEP = 16  # with batching, context prompts are cut to a multiple of this many tokens
# Greedy decoding of Whisper's translate task loops: base on ../shared/eval/zh/asr_example.wav gave
# "Welcome to the video to the video …" for 400 tokens on three VAD cuts of four; a 5-beam search
# ended on all four, for ~1.5x the CPU.
TRANSLATE_BEAM_SIZE = 5


@dataclass(frozen=True)
class Word:
    """A word (a character or two in Chinese) in seconds from the start of the decoded audio."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str | None = None
    language_probability: float = 1.0
    words: tuple[Word, ...] = ()
    avg_logprob: float | None = None  # the decoder's mean log-probability per token: exp() is a confidence
    no_speech_prob: float = 0.0  # Whisper's probability that the window holds no speech


class RecognizerStream(Protocol):
    incremental: bool
    forces_prefix: bool  # decode(prefix=...) results always begin with the prefix

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
        """Transcribe the utterance that started at session sample ``utterance``; ``audio`` is all of it so far.

        ``thrifty``: other sessions wait for the decode threads, so a cheaper decode that costs a
        little accuracy is worth it (streams without such a choice ignore it). ``prefix``: text the
        result must begin with (streams whose ``forces_prefix`` is False ignore it)."""
        ...

    def remember(self, final: str, language: str | None) -> None:
        """A final the session sent: context for the next decodes (streams without context ignore it)."""
        ...


class TextRecognizer(Protocol):
    """A recognizer without streams of its own (test doubles): TextOnlyStream wraps it."""

    def transcribe(self, audio: np.ndarray, *, language: str, beam_size: int | None = None) -> str: ...


class LanguageState:
    """The session's language: fixed, or with ``auto`` detected per decode until a confident final fixes it."""

    def __init__(self, requested: str) -> None:
        self.requested = requested
        self.fixed: str | None = None if requested == AUTO else requested

    def observe(self, result: Transcription, *, final: bool) -> None:
        if (
            self.fixed is None
            and final
            and result.text
            and result.language
            and result.language_probability >= LOCK_LANGUAGE_PROB
        ):
            self.fixed = result.language
            logger.info("language detected language=%s probability=%.2f", result.language, result.language_probability)


class WhisperRecognizer:
    def __init__(
        self,
        model_dir: Path,
        *,
        device: str,
        compute_type: str,
        cpu_threads: int,
        beam_size: int,
        name: str = "",
        fit_window: bool = True,
        decode_workers: int = 1,
        batching: BatchSettings | None = None,
    ) -> None:
        """``fit_window``: encode only as much of Whisper's 30 s window as the utterance needs
        (see :meth:`_recognize_fitted`); False always takes faster-whisper's own path.
        ``batching``: fitted decodes of concurrent sessions run as one batch (engine/batching.py)."""
        from faster_whisper import WhisperModel

        self.model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=decode_workers,  # decodes from several threads run in parallel, not in turn
            local_files_only=True,
        )
        self.beam_size = beam_size
        self.name = name or model_dir.name
        self.fit_window = fit_window
        self._tokenizers: dict[str, Tokenizer] = {}
        self._suppressed: dict[str, tuple[int, ...]] = {}
        self.batcher = (
            DecodeBatcher(
                self._generate_batch,
                max_size=batching.max_size,
                window_s=batching.window_ms / 1000,
                urgent_wait_s=batching.final_wait_ms / 1000,
            )
            if batching is not None and batching.window_ms > 0 and batching.max_size > 1
            else None
        )

    def transcribe(
        self, audio: np.ndarray, *, language: str, beam_size: int | None = None, fit_window: bool | None = None
    ) -> str:
        """Text of one utterance (16 kHz float32); empty when Whisper judges it not to be speech.

        ``fit_window=False``: faster-whisper's own 30 s decoding (the offline baselines use it)."""
        return self.recognize(audio, language=language, beam_size=beam_size, fit_window=fit_window).text

    def recognize(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        beam_size: int | None = None,
        word_timestamps: bool = False,
        prompt: str = "",
        hotwords: tuple[str, ...] = (),
        fit_window: bool | None = None,
        min_window_s: int = MIN_FITTED_S,
        task: str = "transcribe",
    ) -> Transcription:
        """One utterance; ``language=None`` detects it. Chinese comes out in simplified characters.

        ``min_window_s``: the smallest encoder window a fitted decode may use (10 s to 30 s).
        ``task="translate"``: English text; ``language`` is still the speech's own. Translations take
        faster-whisper's own path (the fitted window was measured on transcription only, and on
        ../shared/eval/zh a fitted translation let Chinese characters through) and a beam search."""
        if len(audio) < 1600:  # under 0.1 s: nothing Whisper can use
            return Transcription("", language)
        fit = (self.fit_window if fit_window is None else fit_window) and task == "transcribe"
        if fit and language and not word_timestamps and len(audio) <= MAX_FITTED_S * SAMPLE_RATE:
            fitted = self._recognize_fitted(
                audio,
                language=language,
                beam_size=beam_size,
                prompt=prompt,
                hotwords=hotwords,
                min_window_s=max(MIN_FITTED_S, min_window_s),
            )
            if fitted is not None:
                return fitted
        segments, info = self.model.transcribe(
            audio,
            language=language,
            task=task,
            beam_size=max(beam_size or self.beam_size, TRANSLATE_BEAM_SIZE if task == "translate" else 1),
            temperature=0.0,
            vad_filter=False,
            # Word timings want timestamp tokens: without them faster-whisper seeks to the last word's
            # end and decodes the rest again, which on an utterance's trailing silence is made-up text.
            without_timestamps=not word_timestamps,
            word_timestamps=word_timestamps,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            hotwords=" ".join(hotwords) or None,
        )
        segments = list(segments)
        kept = [s for s in segments if not (s.no_speech_prob > NO_SPEECH_PROB and s.avg_logprob < LOW_LOGPROB)]
        detected = info.language
        written = "en" if task == "translate" else detected
        text = functools.reduce(join_pieces, (s.text.strip() for s in kept), "")
        words = tuple(
            Word(output_text(w.word.strip(), written), float(w.start), float(w.end), float(w.probability))
            for s in kept
            for w in (s.words or ())
            if w.word.strip()
        )
        tokens = [max(len(s.tokens), 1) for s in kept]
        avg_logprob = sum(s.avg_logprob * n for s, n in zip(kept, tokens, strict=True)) / sum(tokens) if kept else 0.0
        no_speech = max((s.no_speech_prob for s in segments), default=0.0)
        language_probability = float(info.language_probability)
        return Transcription(output_text(text, written), detected, language_probability, words, avg_logprob, no_speech)

    def _recognize_fitted(
        self,
        audio: np.ndarray,
        *,
        language: str,
        beam_size: int | None,
        prompt: str,
        hotwords: tuple[str, ...],
        min_window_s: int = MIN_FITTED_S,
        prefix: str = "",
    ) -> Transcription | None:
        """Decode with the encoder window cut to the utterance (at least 10 s) instead of 30 s.

        faster-whisper always pads to 30 s, and the encoder's cost grows with the window: on a
        short utterance most of it is spent on padding. On ../shared/eval this is about 3x less
        CPU per decode with the same words (bench.models measures it). Windows under 10 s make
        Whisper repeat itself, so they are never used; a result that still looks like a loop (the
        token budget used up) or like noise (no letter or digit) returns None, and the caller decodes
        the usual way.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.model
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
            self._tokenizers[language] = tokenizer
        duration_s = len(audio) / SAMPLE_RATE
        frames = min(MAX_FITTED_S, max(min_window_s, math.ceil(duration_s + 1))) * FRAMES_PER_S
        features = model.feature_extractor(audio)
        window = pad_or_trim(features[:, :frames], frames)
        previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
        if self.batcher is not None and len(previous) > BATCH_PROMPT_STEP:
            # CTranslate2 batches only prompts whose start token is at one position: keep the last
            # whole steps of the context, so that sessions' prompts line up in a few lengths.
            previous = previous[-(len(previous) // BATCH_PROMPT_STEP * BATCH_PROMPT_STEP) :]
        # With a prefix, faster-whisper's prompt leaves hotwords out; the prefix's tokens follow the
        # start sequence, and the decoder goes on from them.
        forced = tokenizer.encode(" " + prefix.strip()) if prefix.strip() else []
        tokens = model.get_prompt(
            tokenizer, previous, without_timestamps=True, prefix=prefix.strip() or None,
            hotwords=" ".join(hotwords) or None,
        )  # fmt: skip
        budget = int(duration_s * TOKENS_PER_S) + 8
        suppressed = self._suppressed.get(language)
        if suppressed is None:
            suppressed = self._suppressed[language] = tuple(get_suppressed_tokens(tokenizer, (-1,)))
        key = (frames, beam_size or self.beam_size, suppressed, tokens.index(tokenizer.sot))
        request = DecodeRequest(window, tokens, len(tokens) + budget)
        result = self.batcher.run(key, request) if self.batcher else self._generate_batch(key, [request])[0]
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if forced and ids[: len(forced)] == forced:
            ids = ids[len(forced) :]  # the result holds the prefix's tokens: keep what follows them
        if len(ids) >= budget:
            return None  # ran out of tokens: a loop; the 30 s window decides
        avg_logprob = result.scores[0] * len(ids) / (len(ids) + 1)  # scores are per token; as faster-whisper
        if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB:
            return Transcription("", language, avg_logprob=avg_logprob, no_speech_prob=result.no_speech_prob)
        text = output_text(tokenizer.decode(ids).strip(), language)
        if forced:
            rest = output_text(tokenizer.decode(ids), language)
            text = prefix.strip() + (rest if not rest.strip() or rest[:1].isspace() or has_cjk(rest) else " " + rest)
            text = text.rstrip()
        if not any(ch.isalnum() for ch in text):
            return None  # only punctuation: what Whisper makes of noise; the 30 s window judges it
        return Transcription(text, language, avg_logprob=avg_logprob, no_speech_prob=result.no_speech_prob)

    def _generate_batch(self, key: Hashable, requests: Sequence[DecodeRequest]) -> list[Any]:
        """One encoder pass and one ``generate`` for requests that share ``key`` (window, beam,
        suppressed tokens, where the prompt's start token is). A request whose own token budget is
        below the batch's may run past it; its caller then sees the budget used up, as it would
        have alone (a loop: decoded again)."""
        _, beam_size, suppressed, _ = cast(tuple[int, int, tuple[int, ...], int], key)
        encoded = self.model.encode(np.stack([r.features for r in requests]))
        return self.model.model.generate(
            encoded,
            [r.prompt for r in requests],
            beam_size=beam_size,
            max_length=max(r.max_length for r in requests),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(suppressed),
        )

    def recognize_after(
        self,
        audio: np.ndarray,
        prefix: str,
        *,
        language: str,
        beam_size: int | None,
        prompt: str,
        hotwords: tuple[str, ...],
        min_window_s: int,
    ) -> Transcription | None:
        """One utterance whose text must begin with ``prefix`` (what the client was already shown);
        None when the fitted decode cannot give one (too long, a loop): the caller decodes freely."""
        if len(audio) < 1600 or len(audio) > MAX_FITTED_S * SAMPLE_RATE:
            return None
        return self._recognize_fitted(
            audio, language=language, beam_size=beam_size, prompt=prompt, hotwords=hotwords,
            min_window_s=min_window_s, prefix=prefix,
        )  # fmt: skip

    def open_stream(self, config: SessionConfig) -> "WhisperStream":
        return WhisperStream(self, config)


class WhisperStream:
    """A session's view of a shared Whisper model: each decode re-reads the whole utterance."""

    incremental = False
    forces_prefix = True

    def __init__(self, recognizer: WhisperRecognizer, config: SessionConfig) -> None:
        self.recognizer = recognizer
        self.config = config
        self.language = LanguageState(config.language)
        self.context = Context()

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
        # Short finals take the standard 30 s window: on one- or two-word utterances the fitted
        # window costs accuracy ("ten of clubs" → "10 of close"); longer ones keep the saving.
        # Thrifty, they take a 15 s window: nearly as accurate, half the CPU (THRIFTY_SHORT_FINAL_WINDOW_S).
        short_final = final and len(audio) < FIT_FINALS_FROM_S * SAMPLE_RATE

        def recognize(prompt: str) -> Transcription:
            if prefix and self.language.fixed and not (final and self.config.word_timestamps):
                # Only fitted decoding forces a prefix: a short final gets the full 30 s window that way.
                window_s = MAX_FITTED_S if short_final and not thrifty else None
                forced = self.recognizer.recognize_after(
                    audio, prefix, language=self.language.fixed, beam_size=beam_size, prompt=prompt,
                    hotwords=self.config.hotwords, min_window_s=window_s or (THRIFTY_SHORT_FINAL_WINDOW_S
                    if short_final else MIN_FITTED_S),
                )  # fmt: skip
                if forced is not None:
                    return forced
            return self.recognizer.recognize(
                audio,
                language=self.language.fixed,
                beam_size=beam_size,
                word_timestamps=final and self.config.word_timestamps,
                prompt=prompt,
                hotwords=self.config.hotwords,
                fit_window=False if short_final and not thrifty else None,
                min_window_s=THRIFTY_SHORT_FINAL_WINDOW_S if short_final else MIN_FITTED_S,
                task=self.config.task,
            )

        prompt = self.config.prompt
        if self.config.context and self.config.task == "transcribe":
            prompt = self.context.prompt(self.config.prompt, self.language.fixed)
        result = recognize(prompt)
        if prompt != self.config.prompt and result.text and self._led_astray(result):
            result = recognize(self.config.prompt)  # hear the audio alone
        elif prompt != self.config.prompt and final and shares_phrase(result.text, self.context.text):
            # The context may have pulled the decoder, or the speaker said it again: hear the audio
            # alone too and keep the decode the model is surer of.
            alone = recognize(self.config.prompt)
            if alone.avg_logprob is not None and alone.avg_logprob > (result.avg_logprob or -math.inf):
                result = alone
        text, suppressed = guard.check(result.text, result.no_speech_prob, self.config.prompt)
        if suppressed is not None:
            result = replace(result, text=text, words=())
            if final:
                instruments.count_suppressed(suppressed)
        if (numbers := fix_digit_grouping(result.text, result.language)) != result.text:
            result = replace(result, text=numbers)
        if prefix and not result.text.startswith(prefix.strip()):
            result = replace(result, text=continue_from(prefix, result.text), words=())
        self.language.observe(result, final=final)
        return result

    def remember(self, final: str, language: str | None) -> None:
        if self.config.context:
            self.context.remember(final, language)

    def _led_astray(self, result: Transcription) -> bool:
        """A prompted decode gone wrong: it repeats the context, Whisper itself thinks the window is
        silent (on hiss and hum, a prompted tiny.en says the prompt again, or "Thank you.", with a
        no-speech probability of 0.84-0.96 but a log-probability above the usual cut), or it loops
        (base, prompted with "until the . . .", wrote ". . ." for 400 tokens on long/lucier-room)."""
        looped = guard.cut_loops(result.text) != result.text.strip()
        return echoes(result.text, self.context.text) or result.no_speech_prob > NO_SPEECH_PROB or looped


class TextOnlyStream:
    """For a recognizer that only has ``transcribe(audio, language=, beam_size=) -> str`` (test doubles)."""

    incremental = False
    forces_prefix = False

    def __init__(self, recognizer: TextRecognizer, config: SessionConfig) -> None:
        self.recognizer = recognizer
        self.language = config.language

    def remember(self, final: str, language: str | None) -> None:
        """No context: the wrapped recognizer takes audio only."""

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
        text = self.recognizer.transcribe(audio, language=self.language, beam_size=beam_size)
        return Transcription(text, self.language)


def open_stream(recognizer: object, config: SessionConfig) -> RecognizerStream:
    opener = getattr(recognizer, "open_stream", None)
    return opener(config) if opener is not None else TextOnlyStream(cast(TextRecognizer, recognizer), config)


def shift_words(words: tuple[Word, ...], offset: float, start: float, end: float) -> tuple[Word, ...]:
    """Utterance-relative word times → session times, inside [start, end] and never going backwards."""
    shifted, floor = [], start
    for w in words:
        w_start = min(max(w.start + offset, floor), end)
        w_end = min(max(w.end + offset, w_start), end)
        shifted.append(replace(w, start=w_start, end=w_end))
        floor = w_end
    return tuple(shifted)
