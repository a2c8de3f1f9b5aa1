"""Which model serves a language when the client names none: the deployment's ``ASR_LANGUAGE_MODELS``.

``en=tiny.en,*=base`` reads: English on tiny.en, every other language (and ``auto``) on base. A
``start`` that names a model keeps it; one that names only a language gets the model mapped here,
so a client need not know our model names to be understood in Chinese.
"""

import re
from collections.abc import Sequence

from transcription.engine.registry import ModelInfo

ANY_LANGUAGE = "*"
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}|auto|\*")

LanguageModels = tuple[tuple[str, str], ...]  # (language, or "*" for any other; model name), in order


class LanguageModelsError(ValueError):
    """A malformed ``ASR_LANGUAGE_MODELS``; the text says which entry and why."""


def parse_language_models(text: str) -> LanguageModels:
    """``"en=tiny.en, *=base"`` → ``(("en", "tiny.en"), ("*", "base"))``; empty text: no mapping."""
    entries: list[tuple[str, str]] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        language, sep, model = (part.strip() for part in entry.partition("="))
        if not sep or not model:
            raise LanguageModelsError(f"ASR_LANGUAGE_MODELS entry {entry!r} is not LANGUAGE=MODEL (e.g. en=tiny.en).")
        if not LANGUAGE_CODE.fullmatch(language):
            raise LanguageModelsError(
                f"ASR_LANGUAGE_MODELS entry {entry!r}: {language!r} is not a language code "
                "(two or three lowercase letters, 'auto' or '*')."
            )
        if any(language == seen for seen, _ in entries):
            raise LanguageModelsError(f"ASR_LANGUAGE_MODELS names {language!r} twice.")
        entries.append((language, model))
    return tuple(entries)


def model_for_language(
    language: str, mapping: LanguageModels, models: Sequence[ModelInfo], default: str
) -> ModelInfo | None:
    """The available model for ``language``: its own entry, else ``*``'s, else the default model,
    else the first that speaks it; each only if it speaks the language. None: no model speaks it."""
    available = {m.name: m for m in models if m.available}
    named = dict(mapping)
    candidates = [named.get(language), named.get(ANY_LANGUAGE), default, *available]
    for name in candidates:
        info = available.get(name) if name else None
        if info is not None and language in info.languages:
            return info
    return None
