"""The peer's own virtualenv, var/peers/whisperlivekit-venv: never in requirements.txt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.server import ROOT, ServerError

VENV = ROOT / "var" / "peers" / "whisperlivekit-venv"
WHISPERLIVEKIT = "whisperlivekit==0.2.26"
# WhisperLiveKit goes in with --no-deps: it declares torchaudio, which nothing on its
# faster-whisper path imports. These are what that path does import (its server, the
# LocalAgreement policy, the bundled Silero VAD on onnxruntime, the Whisper tokenizer and timing
# modules its core imports at start, librosa for the warm-up clip), at our requirements.txt's
# versions where both use a package, so decoder (ctranslate2) and tokenizer are the same builds
# as ours. torch is the CPU wheel in /opt/wheels.
PEER_REQUIREMENTS = (
    "torch==2.13.0",
    "faster-whisper==1.2.1",
    "ctranslate2==4.8.5",
    "tokenizers==0.23.3",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "websockets==17.4",
    "requests==2.34.2",
    "fastapi==0.165.0",
    "starlette==1.10.0",
    "python-multipart==0.0.34",  # FastAPI refuses its Form() REST endpoint without it
    "uvicorn==0.54.0",
    "soundfile==0.14.0",
    "tiktoken==0.14.0",
    "regex==2026.11.15",
    "numba==0.68.1",
    "llvmlite==0.50.0",
    "librosa==0.11.0",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "soxr==1.1.0",
    "audioread==3.1.0",
    "pooch==1.9.0",
    "joblib==1.6.0",
    "threadpoolctl==3.8.0",
    "lazy-loader==0.6",
    "msgpack==1.2.4",
    "decorator==5.3.1",
)
IMPORT_CHECK = (
    "import sys; sys.argv = ['x']; import whisperlivekit.basic_server, "
    "whisperlivekit.local_agreement.backends, faster_whisper, librosa, onnxruntime"
)


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def installed(venv: Path = VENV) -> bool:
    """Whether the venv exists and WhisperLiveKit's server and faster-whisper backend import in it."""
    python = venv_python(venv)
    check = [str(python), "-I", "-c", IMPORT_CHECK]
    return python.exists() and subprocess.run(check, capture_output=True, cwd=venv.parent).returncode == 0


def install(venv: Path = VENV, *, force: bool = False) -> Path:
    """Create the venv, or do nothing when it works already; returns its python."""
    python = venv_python(venv)
    if not force and installed(venv):
        print(f"WhisperLiveKit is already installed in {venv}")
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--no-deps", WHISPERLIVEKIT],
        [str(python), "-m", "pip", "install", *PEER_REQUIREMENTS],
    ]
    for step in steps:
        print("+", " ".join(step), flush=True)
        if subprocess.run(step).returncode != 0:
            raise ServerError(f"installing WhisperLiveKit failed at: {' '.join(step)}")
    if not installed(venv):
        raise ServerError(f"WhisperLiveKit was installed in {venv} but `{IMPORT_CHECK}` fails there")
    print(f"WhisperLiveKit installed in {venv} (pip's note on torchaudio, declared but unused here, is expected)")
    return python
