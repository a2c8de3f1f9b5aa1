"""What a streaming session emits."""

from dataclasses import dataclass
from typing import Any

FINAL_REASONS = ("vad", "client", "max_length", "stop", "disconnect")


@dataclass(frozen=True)
class TranscriptEvent:
    """A partial or final hypothesis for one segment; times are seconds of session audio."""

    segment: int
    text: str
    start: float
    end: float
    is_final: bool
    reason: str | None = None

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
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "TranscriptEvent":
        return cls(
            segment=message["segment"],
            text=message["text"],
            start=message["start"],
            end=message["end"],
            is_final=message["is_final"],
            reason=message.get("reason"),
        )
