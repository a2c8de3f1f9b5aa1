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

    def __init__(self, *args: Any, limits: SessionLimits, current: SessionDefaults, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = [(m.name, m.name) for m in limits.models if m.available]
        if current.model and current.model not in dict(models):
            models.append((current.model, f"{current.model} (not available now)"))
        model_field = self.fields["default_model"]
        language_field = self.fields["default_language"]
        endpointing_field = self.fields["default_endpointing_ms"]
        assert isinstance(model_field, forms.ChoiceField) and isinstance(language_field, forms.ChoiceField)
        model_field.choices = [("", "The language's model (server default)"), *models]
        language_field.choices = [("", "Server default"), *language_choices(limits, keep=current.language)]
        endpointing_field.widget.attrs.update(
            min=limits.min_endpointing_ms, max=limits.max_endpointing_ms, placeholder=str(limits.default_endpointing_ms)
        )
        self.initial.setdefault("default_model", current.model)
        self.initial.setdefault("default_language", current.language)
        self.initial.setdefault("default_endpointing_ms", current.endpointing_ms)
