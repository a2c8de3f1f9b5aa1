"""What a streaming session emits."""

from dataclasses import dataclass
from typing import Any

FINAL_REASONS = ("vad", "client", "max_length", "stop", "disconnect")


@dataclass(frozen=True)
class WordTiming:
    """One word of a final, in seconds of session audio."""

    word: str
    start: float
    end: float
    probability: float

    def to_message(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "start": round(self.start, 2),  # as the final's own times: rounding keeps the order
            "end": round(self.end, 2),
            "probability": round(self.probability, 3),
        }


@dataclass(frozen=True)
class TranscriptEvent:
    """A partial or final hypothesis for one segment; times are seconds of session audio.

    ``language`` is set on finals (the detected one when the session asked for ``auto``);
    ``words`` on finals of sessions that asked for ``word_timestamps``; ``confidence`` on finals
    of recognizers that measure it (engine/guard.py), in [0, 1]; ``channel`` (0-based) on every
    event of a multichannel session (engine/multichannel.py), None when channels are mixed down.
    """

    segment: int
    text: str
    start: float
    end: float
    is_final: bool
    reason: str | None = None
    language: str | None = None
    words: tuple[WordTiming, ...] | None = None
    confidence: float | None = None
    stable: str | None = None  # on partials of stable_partials sessions: the text the final goes on from
    channel: int | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "final" if self.is_final else "partial",
            "segment": self.segment,
            "text": self.text,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "is_final": self.is_final,
        }
        if self.is_final:
            message["reason"] = self.reason
        if self.language is not None:
            message["language"] = self.language
        if self.words is not None:
            message["words"] = [w.to_message() for w in self.words]
        if self.confidence is not None:
            message["confidence"] = self.confidence
        if self.stable is not None:
            message["stable"] = self.stable
        if self.channel is not None:
            message["channel"] = self.channel
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "TranscriptEvent":
        words = message.get("words")
        return cls(
            segment=message["segment"],
            text=message["text"],
            start=message["start"],
            end=message["end"],
            is_final=message["is_final"],
            reason=message.get("reason"),
            language=message.get("language"),
            words=None if words is None else tuple(WordTiming(**w) for w in words),
            confidence=message.get("confidence"),
            stable=message.get("stable"),
            channel=message.get("channel"),
        )
