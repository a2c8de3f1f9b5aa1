"""Per-session settings: what a client may ask for in ``start`` and the bounds it must stay in."""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from transcription.engine.languages import LanguageModels, model_for_language
from transcription.engine.registry import ModelInfo

# What a client may send: raw samples (bytes per sample here), or Opus in an Ogg or WebM container.
# The gateway decodes mulaw, alaw and opus to pcm_s16le on arrival (transcription/codecs/): past it,
# a session's audio is PCM (SessionConfig.pcm_encoding).
SAMPLE_BYTES = {"pcm_s16le": 2, "pcm_f32le": 4, "mulaw": 1, "alaw": 1}
ENCODINGS = (*SAMPLE_BYTES, "opus")
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Opus decodes to
DEFAULT_SAMPLE_RATES = {"mulaw": 8000, "alaw": 8000, "opus": 48000}  # others: 16000
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_MIXED_CHANNELS = 2  # mixed down to one stream: mono or stereo, as WAV headers here are
MAX_CHANNELS = 8  # multichannel: each channel is a stream of its own, and costs what one does
MAX_PROMPT_CHARS = 200  # Whisper keeps at most 223 prompt tokens; this stays well inside it
MAX_HOTWORDS = 20
MAX_HOTWORD_CHARS = 50
TASKS = ("transcribe", "translate")  # Whisper's tasks: the speech's own language, or English
# Two-pass finals: the final model's decode is the final, or the surer of both models' (engine/pick.py).
FINAL_CHOICES = ("final_model", "confident")


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
    language_models: LanguageModels = ()  # ASR_LANGUAGE_MODELS: the model of a language, when none is named
    default_final_model: str = ""  # ASR_FINAL_MODEL: two-pass finals where it speaks the language
    default_final_choice: str = "final_model"  # ASR_FINAL_CHOICE: one of FINAL_CHOICES
    default_context: bool = True  # ASR_CONTEXT: recent finals prompt the decoder unless a start says no


@dataclass(frozen=True)
class SessionDefaults:
    """A tenant's own defaults, below what a client asks for and above the server's.

    Each is used only where it fits: a default model that does not speak the language the client
    asked for, or one no longer available, gives way to the language's model; a default language
    the chosen model does not speak, to the model's own; a default final model that cannot decode
    the session's finals, to the server's. A default never makes a start fail."""

    model: str = ""
    language: str = ""
    endpointing_ms: int | None = None
    final_model: str = ""  # two-pass: the model that decodes finals ("": the server's ASR_FINAL_MODEL)


NO_DEFAULTS = SessionDefaults()


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
    final_model: str = ""  # two-pass: the model that decodes finals ("": the session's model)
    final_choice: str = "final_model"  # with a final_model: its decode, or the surer of both ("confident")
    # Partials carry the text two in a row agreed on, and the final goes on from it (engine/stabilizer.py):
    # for protocols whose clients append interim text. The server's choice, not a start field.
    stable_partials: bool = False
    # Each channel its own utterance stream, results tagged with their channel (engine/multichannel.py);
    # False: the channels are mixed down to one.
    multichannel: bool = False

    @property
    def pcm_encoding(self) -> str:
        """The session's audio past the gateway's decoder: what the client sent if PCM, else pcm_s16le."""
        return "pcm_f32le" if self.encoding == "pcm_f32le" else "pcm_s16le"

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one PCM sample across all channels; every (decoded) audio frame is a multiple of it."""
        return SAMPLE_BYTES[self.pcm_encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.bytes_per_frame * self.sample_rate

    @property
    def metered_channels(self) -> int:
        """How many times a second of this session's audio is metered: once per channel transcribed."""
        return self.channels if self.multichannel else 1

    @property
    def bytes_per_metered_second(self) -> int:
        """Bytes of audio that make one metered second (quota and usage count these, not wall seconds)."""
        return self.bytes_per_second // self.metered_channels

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
        data.pop("stable_partials")  # nor this: the protocol's
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
    "final_model",
    "final_choice",
    "hotwords",
    "multichannel",
}


def _int_field(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{name}' must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"'{name}' must be between {low} and {high}, got {value}.")
    return value


def parse_start(
    message: dict[str, Any],
    limits: SessionLimits,
    *,
    task: str = "transcribe",
    defaults: SessionDefaults = NO_DEFAULTS,
    stable_partials: bool = False,
) -> SessionConfig:
    """Validate a ``start`` message (every field optional) into a SessionConfig.

    ``task`` is the server's choice (OpenAI's translations endpoint), not a field a client sends;
    ``defaults`` the tenant's, for the fields the message leaves out."""
    unknown = sorted(set(message) - CLIENT_FIELDS)
    if unknown:
        raise ConfigError(
            f"Unknown field(s) in start: {', '.join(unknown)}. Allowed: {', '.join(sorted(CLIENT_FIELDS))}."
        )
    encoding = message.get("encoding", "pcm_s16le")
    if encoding not in ENCODINGS:
        raise ConfigError(f"'encoding' must be one of {', '.join(ENCODINGS)}, got {encoding!r}.")
    sample_rate = _sample_rate(message, encoding)
    multichannel = _bool_field(message, "multichannel", False)
    channels = _int_field(message, "channels", 1, 1, MAX_CHANNELS)
    if channels > MAX_MIXED_CHANNELS and not multichannel:
        raise ConfigError(
            f"At most {MAX_MIXED_CHANNELS} channels are mixed down; more need 'multichannel': true "
            f"(each channel transcribed on its own, up to {MAX_CHANNELS})."
        )
    model = _model(message, limits, defaults, task)
    _check_task(task, model)
    if model is None:
        fallback = defaults.language if defaults.language in limits.languages else limits.languages[0]
        language = message.get("language", fallback)
        if language not in limits.languages:
            raise ConfigError(f"Language {language!r} is not available; available: {', '.join(limits.languages)}.")
    else:
        language = _language(message, model, defaults)
    interim = _bool_field(message, "interim_results", True)
    word_timestamps = _bool_field(message, "word_timestamps", False)
    context = _bool_field(message, "context", limits.default_context)
    prompt, hotwords = _prompt(message)
    if model is not None and word_timestamps and not model.word_timestamps:
        raise ConfigError(f"Model {model.name!r} does not give word timestamps.")
    if model is not None and (prompt or hotwords) and not model.prompt:
        raise ConfigError(f"Model {model.name!r} does not take a prompt or hotwords.")
    final_model = _final_model(message, limits, model, language, defaults)
    low, high = limits.min_endpointing_ms, limits.max_endpointing_ms
    tenant_ms = defaults.endpointing_ms
    default_ms = tenant_ms if tenant_ms is not None and low <= tenant_ms <= high else limits.default_endpointing_ms
    endpointing_ms = _int_field(message, "endpointing_ms", default_ms, low, high)
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
        stable_partials=stable_partials,
        final_model=final_model,
        final_choice=_final_choice(message, limits, final_model),
        multichannel=multichannel,
    )


def _sample_rate(message: dict[str, Any], encoding: str) -> int:
    """The start's rate, by default the encoding's usual one; Opus decodes to its own rates only."""
    default = DEFAULT_SAMPLE_RATES.get(encoding, 16000)
    rate = _int_field(message, "sample_rate", default, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    if encoding == "opus" and rate not in OPUS_SAMPLE_RATES:
        rates = ", ".join(map(str, OPUS_SAMPLE_RATES))
        raise ConfigError(f"'sample_rate' for opus must be one of {rates} (Opus decodes to these), got {rate}.")
    return rate


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


def _model(message: dict[str, Any], limits: SessionLimits, defaults: SessionDefaults, task: str) -> ModelInfo | None:
    """The registry entry the session asks for; without one, the tenant's default model if it serves
    what the session asks (its language, features, task), else the language's model
    (ASR_LANGUAGE_MODELS), else the server's default. None when there is no catalogue."""
    if not limits.models:
        if "model" in message:
            raise ConfigError("This server does not offer a choice of model.")
        return None
    if "model" in message:
        return _named_model(message["model"], limits)
    language = message.get("language", defaults.language or None)
    language = language if isinstance(language, str) else None  # refused later, with the model's languages
    tenant_model = next((m for m in limits.models if m.name == defaults.model and m.available), None)
    if tenant_model is not None and _serves(tenant_model, message, language, task):
        return tenant_model
    if language is not None:
        chosen = model_for_language(language, limits.language_models, limits.models, limits.default_model)
        if chosen is not None:
            return chosen
    return _named_model(limits.default_model, limits)


def _final_model(
    message: dict[str, Any], limits: SessionLimits, model: ModelInfo | None, language: str, defaults: SessionDefaults
) -> str:
    """Two-pass: the model that decodes finals, asked for, else the tenant's, else the server's
    (ASR_FINAL_MODEL); "" for none. A default gives way where it cannot serve the session (the
    tenant's to the server's); one asked for is refused."""
    asked = message.get("final_model")
    if asked in ("", None):
        for name in (defaults.final_model, limits.default_final_model):
            default = next((m for m in limits.models if name and m.name == name and m.available), None)
            if default is not None and model is not None and _decodes_finals_of(default, model, language):
                return "" if default.name == model.name else default.name
        return ""
    if model is None:
        raise ConfigError("This server does not offer a choice of model.")
    info = _named_model(asked, limits)
    fits = _decodes_finals_of(info, model, language)
    if not fits:
        raise ConfigError(
            f"'final_model' {info.name!r} cannot decode the finals of a {model.name!r} session in {language!r}: "
            "both must be Whisper models and the final model must speak the language."
        )
    return "" if info.name == model.name else info.name


def _final_choice(message: dict[str, Any], limits: SessionLimits, final_model: str) -> str:
    """How a two-pass final is chosen; the server's default where the start names none. Without a
    final model there is one decode and nothing to choose: asking for "confident" then is an error."""
    choice = message.get("final_choice", limits.default_final_choice)
    if choice not in FINAL_CHOICES:
        raise ConfigError(f"'final_choice' must be one of {', '.join(FINAL_CHOICES)}, got {choice!r}.")
    if not final_model:
        if "final_choice" in message and choice != "final_model":
            raise ConfigError("'final_choice' needs a 'final_model' other than the session's model.")
        return "final_model"
    return str(choice)


def _decodes_finals_of(final: ModelInfo, model: ModelInfo, language: str) -> bool:
    return model.engine == "whisper" and final.engine == "whisper" and language in final.languages


def _serves(model: ModelInfo, message: dict[str, Any], language: str | None, task: str) -> bool:
    """Whether ``model`` can do what the start asks, so a tenant's default model never refuses it."""
    return (
        (language is None or language in model.languages)
        and (message.get("word_timestamps") is not True or model.word_timestamps)
        and (not (message.get("prompt") or message.get("hotwords")) or model.prompt)
        and (task != "translate" or model.translates)
    )


def _named_model(name: Any, limits: SessionLimits) -> ModelInfo:
    if not isinstance(name, str):
        raise ConfigError(f"'model' must be a string, got {name!r}.")
    info = next((m for m in limits.models if m.name == name), None)
    if info is None:
        raise ConfigError(f"Unknown model {name!r}; available: {_available_names(limits)}.")
    if not info.available:
        raise ConfigError(f"Model {name!r} is not available on this server ({info.detail}); available: "
                          f"{_available_names(limits)}.")  # fmt: skip
    return info


def _language(message: dict[str, Any], model: ModelInfo, defaults: SessionDefaults) -> str:
    fallback = defaults.language if defaults.language in model.languages else model.default_language
    language = message.get("language", fallback)
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
