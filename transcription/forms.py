"""The dashboard's form for the tenant's session defaults, and the language names the pages show."""

from typing import Any

from django import forms

from transcription.engine.config import SessionDefaults, SessionLimits

# The languages the pages offer by name, in this order, where a model here speaks them (a short
# list: Whisper's 99 would make a poor menu). "auto" detects the language of the first utterance.
LANGUAGE_NAMES = {
    "auto": "Detect (auto)",
    "en": "English",
    "zh": "Chinese (Mandarin)",
    "yue": "Cantonese",
    "ja": "Japanese",
    "ko": "Korean",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
    "ru": "Russian",
    "ar": "Arabic",
    "hi": "Hindi",
}


def language_choices(limits: SessionLimits, *, keep: str = "") -> list[tuple[str, str]]:
    """(code, name) of the short list's languages some available model speaks, plus ``keep`` (the
    tenant's default) even if it is not on the list."""
    spoken = {code for m in limits.models if m.available for code in m.languages} or set(limits.languages)
    choices = [(code, name) for code, name in LANGUAGE_NAMES.items() if code in spoken]
    if keep and keep not in dict(choices):
        choices.append((keep, keep))
    return choices


class SessionDefaultsForm(forms.Form):
    """Blank fields leave the choice to the server; the service checks the combination."""

    default_model = forms.ChoiceField(required=False, label="Model")
    default_language = forms.ChoiceField(required=False, label="Language")
    default_endpointing_ms = forms.IntegerField(required=False, label="Pause that ends a sentence (ms)")
    default_final_model = forms.ChoiceField(
        required=False,
        label="Final model (two-pass)",
        help_text="Re-decodes each final with a more accurate model, at more CPU cost; partials stay with the "
        "model. Used where it speaks the session's language.",
    )

    def __init__(self, *args: Any, limits: SessionLimits, current: SessionDefaults, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = _model_choices(limits, keep=current.model)
        final_models = _model_choices(limits, keep=current.final_model, whisper_only=True)
        model_field = self.fields["default_model"]
        language_field = self.fields["default_language"]
        endpointing_field = self.fields["default_endpointing_ms"]
        final_field = self.fields["default_final_model"]
        assert isinstance(model_field, forms.ChoiceField) and isinstance(language_field, forms.ChoiceField)
        assert isinstance(final_field, forms.ChoiceField)
        model_field.choices = [("", "The language's model (server default)"), *models]
        server_final = limits.default_final_model
        no_final = f"Server default ({server_final})" if server_final else "None (one pass)"
        final_field.choices = [("", no_final), *final_models]
        language_field.choices = [("", "Server default"), *language_choices(limits, keep=current.language)]
        endpointing_field.widget.attrs.update(
            min=limits.min_endpointing_ms, max=limits.max_endpointing_ms, placeholder=str(limits.default_endpointing_ms)
        )
        self.initial.setdefault("default_model", current.model)
        self.initial.setdefault("default_language", current.language)
        self.initial.setdefault("default_endpointing_ms", current.endpointing_ms)
        self.initial.setdefault("default_final_model", current.final_model)


def _model_choices(limits: SessionLimits, *, keep: str, whisper_only: bool = False) -> list[tuple[str, str]]:
    """The available models (only Whisper's can decode finals), plus ``keep`` (the tenant's default)
    marked if it is not available now."""
    choices = [(m.name, m.name) for m in limits.models if m.available and (m.engine == "whisper" or not whisper_only)]
    if keep and keep not in dict(choices):
        choices.append((keep, f"{keep} (not available now)"))
    return choices
