"""Per-session settings: what a client may ask for in ``start`` and the bounds it must stay in."""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from transcription.engine.registry import ModelInfo

ENCODINGS = {"pcm_s16le": 2, "pcm_f32le": 4}  # bytes per sample
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_PROMPT_CHARS = 200  # Whisper keeps at most 223 prompt tokens; this stays well inside it
MAX_HOTWORDS = 20
MAX_HOTWORD_CHARS = 50
TASKS = ("transcribe", "translate")  # Whisper's tasks: the speech's own language, or English


class ConfigError(ValueError):
    """A ``start`` message the server cannot honour; the text is shown to the client."""


@dataclass(frozen=True)
class SessionLimits:
    """Server-side defaults and bounds; the gateway builds it from Django settings."""

    default_endpointing_ms: int = 800
    min_endpointing_ms: int = 200
    max_endpointing_ms: int = 10000
    default_max_utterance_s: float = 30.0
    max_max_utterance_s: float = 60.0
    partial_interval_s: float = 0.5
    languages: tuple[str, ...] = ("en",)  # used only when no model catalogue is given
    models: tuple[ModelInfo, ...] = ()  # the registry's models; empty: the engine's default model only
    default_model: str = ""


@dataclass(frozen=True)
class SessionConfig:
    sample_rate: int = 16000
    encoding: str = "pcm_s16le"
    channels: int = 1
    language: str = "en"
    interim_results: bool = True
    endpointing_ms: int = 800
    max_utterance_s: float = 30.0
    partial_interval_s: float = field(default=0.5, repr=False)
    model: str = ""  # a registry name; "" → the engine's default
    word_timestamps: bool = False
    prompt: str = ""
    hotwords: tuple[str, ...] = ()
    task: str = "transcribe"
    context: bool = True  # the session's recent finals prompt the decoder (engine/context.py)

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample across all channels; every audio frame is a multiple of it."""
        return ENCODINGS[self.encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.bytes_per_frame * self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """Every field, plain (msgpack/JSON-safe): to hand a session to a worker or store a job."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SessionConfig":
        """The inverse of :meth:`to_dict`; unknown keys are ignored, lists come back as tuples."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["hotwords"] = tuple(values.get("hotwords", ()))
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The effective settings as sent back to the client in ``ready``."""
        data = asdict(self)
        data.pop("partial_interval_s")
        data.pop("task")  # not a stream's choice (see parse_start)
        data["hotwords"] = list(self.hotwords)
        return data


CLIENT_FIELDS = {
    "type",
    "sample_rate",
    "encoding",
    "channels",
    "language",
    "interim_results",
    "endpointing_ms",
    "max_utterance_s",
    "model",
    "word_timestamps",
    "prompt",
    "context",
    "hotwords",
}


def _int_field(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{name}' must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"'{name}' must be between {low} and {high}, got {value}.")
    return value


def parse_start(message: dict[str, Any], limits: SessionLimits, *, task: str = "transcribe") -> SessionConfig:
    """Validate a ``start`` message (every field optional) into a SessionConfig.

    ``task`` is the server's choice (OpenAI's translations endpoint), not a field a client sends."""
    unknown = sorted(set(message) - CLIENT_FIELDS)
    if unknown:
        raise ConfigError(
            f"Unknown field(s) in start: {', '.join(unknown)}. Allowed: {', '.join(sorted(CLIENT_FIELDS))}."
        )
    sample_rate = _int_field(message, "sample_rate", 16000, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    encoding = message.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise ConfigError(f"'encoding' must be one of {', '.join(ENCODINGS)}, got {encoding!r}.")
    channels = _int_field(message, "channels", 1, 1, 2)
    model = _model(message, limits)
    _check_task(task, model)
    if model is None:
        language = message.get("language", limits.languages[0])
        if language not in limits.languages:
            raise ConfigError(f"Language {language!r} is not available; available: {', '.join(limits.languages)}.")
    else:
        language = _language(message, model)
    interim = _bool_field(message, "interim_results", True)
    word_timestamps = _bool_field(message, "word_timestamps", False)
    context = _bool_field(message, "context", True)
    prompt, hotwords = _prompt(message)
    if model is not None and word_timestamps and not model.word_timestamps:
        raise ConfigError(f"Model {model.name!r} does not give word timestamps.")
    if model is not None and (prompt or hotwords) and not model.prompt:
        raise ConfigError(f"Model {model.name!r} does not take a prompt or hotwords.")
    endpointing_ms = _int_field(
        message, "endpointing_ms", limits.default_endpointing_ms, limits.min_endpointing_ms, limits.max_endpointing_ms
    )
    max_utterance_s = message.get("max_utterance_s", limits.default_max_utterance_s)
    if isinstance(max_utterance_s, bool) or not isinstance(max_utterance_s, int | float):
        raise ConfigError(f"'max_utterance_s' must be a number, got {max_utterance_s!r}.")
    if not 1.0 <= max_utterance_s <= limits.max_max_utterance_s:
        raise ConfigError(
            f"'max_utterance_s' must be between 1 and {limits.max_max_utterance_s:g}, got {max_utterance_s}."
        )
    return SessionConfig(
        sample_rate=sample_rate,
        encoding=encoding,
        channels=channels,
        language=language,
        interim_results=interim,
        endpointing_ms=endpointing_ms,
        max_utterance_s=float(max_utterance_s),
        partial_interval_s=limits.partial_interval_s,
        model=model.name if model is not None else "",
        word_timestamps=word_timestamps,
        prompt=prompt,
        hotwords=hotwords,
        context=context,
        task=task,
    )


def _check_task(task: str, model: ModelInfo | None) -> None:
    if task not in TASKS:
        raise ConfigError(f"'task' must be one of {', '.join(TASKS)}, got {task!r}.")
    if task == "translate" and (model is None or not model.translates):
        name = f"Model {model.name!r}" if model is not None else "This server's model"
        raise ConfigError(f"{name} cannot translate: only multilingual Whisper models can.")


def _bool_field(message: dict[str, Any], name: str, default: bool) -> bool:
    value = message.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"'{name}' must be true or false, got {value!r}.")
    return value


def _available_names(limits: SessionLimits) -> str:
    names = [m.name for m in limits.models if m.available]
    return ", ".join(names) if names else "none"


def _model(message: dict[str, Any], limits: SessionLimits) -> ModelInfo | None:
    """The registry entry the session asks for (or the default); None when there is no catalogue."""
    if not limits.models:
        if "model" in message:
            raise ConfigError("This server does not offer a choice of model.")
        return None
    name = message.get("model", limits.default_model)
    if not isinstance(name, str):
        raise ConfigError(f"'model' must be a string, got {name!r}.")
    info = next((m for m in limits.models if m.name == name), None)
    if info is None:
        raise ConfigError(f"Unknown model {name!r}; available: {_available_names(limits)}.")
    if not info.available:
        raise ConfigError(f"Model {name!r} is not available on this server ({info.detail}); available: "
                          f"{_available_names(limits)}.")  # fmt: skip
    return info


def _language(message: dict[str, Any], model: ModelInfo) -> str:
    language = message.get("language", model.default_language)
    if not isinstance(language, str) or language not in model.languages:
        shown = ", ".join(model.languages) if len(model.languages) <= 12 else ", ".join(model.languages[:12]) + ", …"
        raise ConfigError(f"Language {language!r} is not available with model {model.name!r}; available: {shown}.")
    return language


def _prompt(message: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    prompt = message.get("prompt", "")
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
        raise ConfigError(f"'prompt' must be a string of at most {MAX_PROMPT_CHARS} characters.")
    hotwords = message.get("hotwords", [])
    if (
        not isinstance(hotwords, list)
        or len(hotwords) > MAX_HOTWORDS
        or not all(isinstance(h, str) and 0 < len(h.strip()) <= MAX_HOTWORD_CHARS for h in hotwords)
    ):
        raise ConfigError(
            f"'hotwords' must be a list of at most {MAX_HOTWORDS} non-empty strings of at most "
            f"{MAX_HOTWORD_CHARS} characters each."
        )
    return prompt.strip(), tuple(h.strip() for h in hotwords)


def default_config(limits: SessionLimits) -> SessionConfig:
    """The settings of a session that a client starts by sending audio without ``start``."""
    return parse_start({}, limits)
