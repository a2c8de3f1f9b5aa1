"""Fixtures shared by the suite: the real models, the real eval audio, two tenants with keys."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from transcription.engine.models import ModelSettings, load_models

REPO = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("ASR_EVAL_DIR", REPO.parent / "shared" / "eval"))


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not (EVAL_DIR / "real" / "manifest.jsonl").exists():
        pytest.fail(f"Evaluation audio not found at {EVAL_DIR}; set ASR_EVAL_DIR.")
    return EVAL_DIR


@pytest.fixture(scope="session")
def engine_models():
    """The real VAD and Whisper models, loaded once for the whole run."""
    return load_models(ModelSettings())


def to_s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


@dataclass
class TenantWithKey:
    tenant: object
    api_key: object
    raw_key: str


def make_tenant(name: str) -> TenantWithKey:
    from accounts import services

    tenant = services.tenant_create(name=name, plan="pro")  # room for the streams a test opens
    api_key, raw = services.api_key_create(tenant=tenant, name="test")
    return TenantWithKey(tenant, api_key, raw)


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
def _fresh_gateway_registry():
    """The gateway's connected and parked sessions are per process; each test starts with none."""
    from transcription.gateway.registry import registry

    registry.reset()
    yield
    registry.reset()
