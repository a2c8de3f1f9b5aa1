"""Django settings → the engine's model settings and model catalogue (the engine itself knows no Django)."""

from django.conf import settings

from transcription.engine.config import SessionLimits
from transcription.engine.models import ModelSettings, model_registry
from transcription.engine.registry import ModelRegistry


def model_settings_from_django() -> ModelSettings:
    return ModelSettings(
        whisper_dir=settings.ASR_WHISPER_MODEL_DIR,
        vad_dir=settings.ASR_VAD_MODEL_DIR,
        device=settings.ASR_DEVICE,
        compute_type=settings.ASR_COMPUTE_TYPE,
        cpu_threads=settings.ASR_CPU_THREADS,
        beam_size=settings.ASR_BEAM_SIZE,
        models_dir=str(settings.ASR_MODELS_DIR),
        default_model=settings.ASR_MODEL,
        funasr_dirs=tuple(d for d in settings.ASR_FUNASR_MODEL_DIR.split(",") if d.strip()),
        fit_window=settings.ASR_WHISPER_FIT_WINDOW,
        decode_workers=settings.ASR_DECODE_WORKERS,
    )


def model_catalogue() -> ModelRegistry:
    """The models a session may ask for; rebuilt on each call (cheap) so an install shows up at once."""
    return model_registry(model_settings_from_django())


def session_limits() -> SessionLimits:
    """Bounds and the model catalogue a stream's ``start`` (or a file's options) is validated against."""
    catalogue = model_catalogue()
    return SessionLimits(
        default_endpointing_ms=settings.ASR_DEFAULT_ENDPOINTING_MS,
        default_max_utterance_s=settings.ASR_DEFAULT_MAX_UTTERANCE_S,
        partial_interval_s=settings.ASR_PARTIAL_INTERVAL_S,
        languages=catalogue.default_info().languages,
        models=catalogue.models,
        default_model=catalogue.default,
    )
