"""Which of our models serves a session of another protocol, whose clients know other model names."""

from transcription.engine.config import SessionLimits
from transcription.engine.registry import ModelInfo


def model_for(name: str | None, language: str | None, limits: SessionLimits) -> str | None:
    """Ours by name; any other name (``nova-3``, ``whisper-1``…) is the default model, or the first
    of ours that speaks the language asked for. None: the default model."""
    available = [m for m in limits.models if m.available]
    if name is not None and any(m.name == name for m in limits.models):
        return name
    if language is None:
        return None

    def speaks(model: ModelInfo) -> bool:
        return language in model.languages

    default = next((m for m in available if m.name == limits.default_model), None)
    if default is not None and speaks(default):
        return None
    return next((m.name for m in available if speaks(m)), None)
