"""The peer's own virtualenv, var/peers/whisperlive-venv: never in requirements.txt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.server import ROOT, ServerError

VENV = ROOT / "var" / "peers" / "whisperlive-venv"
WHISPERLIVE = "whisper-live==0.10.0"
# WhisperLive goes in with --no-deps: it declares CUDA libraries, OpenVINO, openai-whisper and
# PyAudio, none of which its faster_whisper backend on CPU imports. These are what that backend
# does import, at our requirements.txt's versions where both use a package, so the decoder
# (ctranslate2) and tokenizer are the same builds as ours. torch is the CPU wheel in /opt/wheels.
PEER_REQUIREMENTS = (
    "torch==2.13.0",
    "faster-whisper==1.2.0",  # WhisperLive 0.10.0 pins it
    "ctranslate2==4.8.5",
    "tokenizers==0.23.3",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "websockets==17.4",
    "requests==2.34.2",  # faster_whisper.utils imports it; huggingface_hub 2 no longer brings it
    "fastapi==0.165.0",  # whisper_live.server imports FastAPI at module level
    "uvicorn==0.54.0",
)
IMPORT_CHECK = "import whisper_live.server, whisper_live.backend.faster_whisper_backend"


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def installed(venv: Path = VENV) -> bool:
    """Whether the venv exists and WhisperLive's server and faster_whisper backend import in it."""
    python = venv_python(venv)
    return python.exists() and subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True).returncode == 0


def install(venv: Path = VENV, *, force: bool = False) -> Path:
    """Create the venv, or do nothing when it works already; returns its python."""
    python = venv_python(venv)
    if not force and installed(venv):
        print(f"WhisperLive is already installed in {venv}")
        return python
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--no-deps", WHISPERLIVE],
        [str(python), "-m", "pip", "install", *PEER_REQUIREMENTS],
    ]
    for step in steps:
        print("+", " ".join(step), flush=True)
        if subprocess.run(step).returncode != 0:
            raise ServerError(f"installing WhisperLive failed at: {' '.join(step)}")
    if not installed(venv):
        raise ServerError(f"WhisperLive was installed in {venv} but `{IMPORT_CHECK}` fails there")
    print(f"WhisperLive installed in {venv} (pip's notes on its other declared dependencies are expected)")
    return python
