"""Which of our models serves a session of another protocol, whose clients know other model names."""

from transcription.engine.config import SessionLimits


def model_for(name: str | None, limits: SessionLimits) -> str | None:
    """Ours by name; any other name (``nova-3``, ``whisper-1``…) is None: the session names no model,
    so ``parse_start`` chooses as for any client, by its language (ASR_LANGUAGE_MODELS) and the
    tenant's defaults, alike in every protocol."""
    if name is not None and any(m.name == name for m in limits.models):
        return name
    return None
