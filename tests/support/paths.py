"""Where the tests find the repository, the eval audio, and where they leave logs and screenshots."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EVAL_DIR = Path(os.environ.get("ASR_EVAL_DIR", REPO.parent / "shared" / "eval"))
ARTIFACTS = REPO / "test-artifacts"  # not committed


def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
