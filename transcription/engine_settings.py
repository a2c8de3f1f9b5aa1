"""Django settings → the engine's model settings and model catalogue (the engine itself knows no Django)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from transcription.engine.batching import BatchSettings
from transcription.engine.config import SessionLimits
from transcription.engine.languages import ANY_LANGUAGE, LanguageModels, LanguageModelsError, parse_language_models
from transcription.engine.models import ModelSettings, model_registry
from transcription.engine.registry import PARAFORMER_STREAMING, SENSEVOICE, ModelRegistry

# Every name a registry can give, installed here or not: ASR_LANGUAGE_MODELS may name any of them.
KNOWN_MODELS = ("tiny.en", "base", "custom", PARAFORMER_STREAMING, SENSEVOICE)


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
        batching=BatchSettings(
            window_ms=settings.ASR_BATCH_WINDOW_MS,
            max_size=settings.ASR_BATCH_MAX,
            final_wait_ms=settings.ASR_BATCH_FINAL_WAIT_MS,
        ),
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
        language_models=language_models(catalogue),
        default_final_model=settings.ASR_FINAL_MODEL,
        default_context=settings.ASR_CONTEXT,
        default_final_choice=settings.ASR_FINAL_CHOICE,
    )


def language_models(catalogue: ModelRegistry) -> LanguageModels:
    """ASR_LANGUAGE_MODELS without the entries this server cannot serve now (a model not installed,
    or one that does not speak the language), so ``*=base`` on a server without base changes nothing."""
    entries = parse_language_models(settings.ASR_LANGUAGE_MODELS)
    usable = []
    for language, name in entries:
        info = catalogue.get(name)
        if info is not None and info.available and (language == ANY_LANGUAGE or language in info.languages):
            usable.append((language, name))
    return tuple(usable)


def check_language_models() -> None:
    """At start-up: ASR_LANGUAGE_MODELS is well formed, names models we know, and each installed
    model it names speaks its language. A model that is not installed is allowed (skipped)."""
    try:
        entries = parse_language_models(settings.ASR_LANGUAGE_MODELS)
    except LanguageModelsError as error:
        raise ImproperlyConfigured(str(error)) from None
    catalogue = model_catalogue()
    for language, name in entries:
        info = catalogue.get(name)
        if info is None and name not in KNOWN_MODELS:
            known = ", ".join(dict.fromkeys([*KNOWN_MODELS, *catalogue.by_name]))
            raise ImproperlyConfigured(f"ASR_LANGUAGE_MODELS names an unknown model {name!r}; models: {known}.")
        if info is not None and info.available and language != ANY_LANGUAGE and language not in info.languages:
            raise ImproperlyConfigured(
                f"ASR_LANGUAGE_MODELS maps {language!r} to {name!r}, which does not speak it "
                f"(it speaks: {', '.join(info.languages[:12])}{', …' if len(info.languages) > 12 else ''})."
            )
