"""Per-session settings: what a client may ask for in ``start`` and the bounds it must stay in."""

from dataclasses import asdict, dataclass, field
from typing import Any

ENCODINGS = {"pcm_s16le": 2, "pcm_f32le": 4}  # bytes per sample
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000


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
    languages: tuple[str, ...] = ("en",)


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

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample across all channels; every audio frame is a multiple of it."""
        return ENCODINGS[self.encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.bytes_per_frame * self.sample_rate

    def public(self) -> dict[str, Any]:
        """The effective settings as sent back to the client in ``ready``."""
        data = asdict(self)
        data.pop("partial_interval_s")
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
}


def _int_field(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{name}' must be an integer, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"'{name}' must be between {low} and {high}, got {value}.")
    return value


def parse_start(message: dict[str, Any], limits: SessionLimits) -> SessionConfig:
    """Validate a ``start`` message (every field optional) into a SessionConfig."""
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
    language = message.get("language", limits.languages[0])
    if language not in limits.languages:
        raise ConfigError(f"Language {language!r} is not available; available: {', '.join(limits.languages)}.")
    interim = message.get("interim_results", True)
    if not isinstance(interim, bool):
        raise ConfigError(f"'interim_results' must be true or false, got {interim!r}.")
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
    )


def default_config(limits: SessionLimits) -> SessionConfig:
    """The settings of a session that a client starts by sending audio without ``start``."""
    return parse_start({}, limits)
