"""The client's CLI as a user runs it: ``python -m asrclient`` in a subprocess."""

import subprocess
import sys

from .paths import REPO


def run_client(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asrclient", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
