"""OpenAI's multipart forms → our file job's options, refusing what we would not honour."""

from dataclasses import dataclass
from typing import Any

from django.http import QueryDict

from api.openai.errors import OpenAIError
from transcription.engine.install import WHISPER_BASE
from transcription.engine.registry import ModelRegistry

# OpenAI's model names name none of ours: the session's language chooses (ASR_LANGUAGE_MODELS), as for any client.
OPENAI_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
# A stream is OpenAI's transcript.text events; OpenAI streams no subtitles or verbose_json either.
STREAM_FORMATS = ("json", "text")


@dataclass(frozen=True)
class AudioRequest:
    options: dict[str, Any]  # the file job's options (file_jobs.parse_options)
    response_format: str
    words: bool = False  # word timestamps asked for (verbose_json)
    stream: bool = False

    @property
    def task(self) -> str:
        return str(self.options.get("task", "transcribe"))


def transcription_request(form: QueryDict) -> AudioRequest:
    response_format, model = _format_and_model(form)
    granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
    if set(granularities) - {"word", "segment"}:
        raise OpenAIError(400, "timestamp_granularities may hold 'word' and 'segment'.")
    words = "word" in granularities
    if words and response_format != "verbose_json":
        raise OpenAIError(400, "Word timestamps need response_format 'verbose_json'.")
    stream = _flag(form, "stream")
    if stream and response_format not in STREAM_FORMATS:
        raise OpenAIError(
            400, f"stream=true sends transcript.text events, for response_format json or text, not {response_format}."
        )
    options: dict[str, Any] = {"model": None if model in OPENAI_MODELS else model, "word_timestamps": words}
    for name in ("language", "prompt"):
        if form.get(name):
            options[name] = form.get(name)
    return AudioRequest(options, response_format, words=words, stream=stream)


def translation_request(form: QueryDict, catalogue: ModelRegistry) -> AudioRequest:
    """Whisper's translate task; the speech's language is detected (OpenAI's form has none)."""
    response_format, model = _format_and_model(form)
    if _flag(form, "stream"):
        raise OpenAIError(400, "Translations do not stream (nor do OpenAI's); leave out stream.")
    options: dict[str, Any] = {"model": _translator(model, catalogue), "task": "translate", "language": "auto"}
    if form.get("prompt"):
        options["prompt"] = form.get("prompt")
    return AudioRequest(options, response_format)


def _format_and_model(form: QueryDict) -> tuple[str, str]:
    response_format = form.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise OpenAIError(400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}.")
    model = form.get("model") or ""
    if not model:
        raise OpenAIError(400, "You must provide a model parameter.")
    return response_format, model


def _flag(form: QueryDict, name: str) -> bool:
    value = (form.get(name) or "false").lower()
    if value not in ("true", "1", "false", "0"):
        raise OpenAIError(400, f"{name} must be true or false.")
    return value in ("true", "1")


def _translator(model: str, catalogue: ModelRegistry) -> str | None:
    """OpenAI's names mean the default model, or a multilingual one where the default is English-only
    (``tiny.en``); a model named by the client is checked as it is (file_jobs.parse_options)."""
    if model not in OPENAI_MODELS:
        return model
    if catalogue.default_info().translates:
        return None
    info = next((m for m in catalogue.available() if m.translates), None)
    if info is None:
        raise OpenAIError(
            400,
            f"No model here can translate: {catalogue.default!r} is English-only. An operator can add "
            f"a multilingual one: python manage.py asr_models install {WHISPER_BASE.name}.",
            code="model_not_available",
        )
    return info.name
