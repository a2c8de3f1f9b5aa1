"""The client is its own distribution: no Django, no service package, only what it declares."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "asrclient"
SERVICE_PACKAGES = ("django", "channels", "asrplatform", "accounts", "transcription", "api", "bench")

# In a fresh interpreter (-I: no PYTHONPATH, no user site, no current directory), with only the
# repository root added: the top-level packages that importing every client module brings in.
_IMPORTED_PACKAGES = """
import json, sys
sys.path.insert(0, {root!r})
before = set(sys.modules)
import asrclient, asrclient.cli, asrclient.stream, asrclient.wav
new = {{name.split(".")[0] for name in set(sys.modules) - before}}
print(json.dumps({{"file": asrclient.__file__, "packages": sorted(new - set(sys.stdlib_module_names))}}))
"""


def _pyproject() -> dict:
    with open(PACKAGE / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _imported() -> dict:
    code = _IMPORTED_PACKAGES.format(root=str(PACKAGE.parent))
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_client_imports_no_django_and_no_service_package() -> None:
    imported = _imported()
    assert Path(imported["file"]).parent == PACKAGE
    assert not set(imported["packages"]) & set(SERVICE_PACKAGES), imported["packages"]


def test_client_imports_exactly_the_dependencies_its_pyproject_declares() -> None:
    requirements = _pyproject()["project"]["dependencies"]
    declared = {re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0].lower() for dep in requirements}
    assert set(_imported()["packages"]) - {"asrclient"} == declared == {"numpy", "websockets"}


def test_pyproject_installs_the_package_from_its_own_folder_with_a_console_script() -> None:
    config = _pyproject()
    assert config["project"]["name"] == "asrclient"
    assert config["build-system"]["build-backend"] == "setuptools.build_meta"
    assert config["tool"]["setuptools"]["packages"] == ["asrclient"]
    assert config["tool"]["setuptools"]["package-dir"] == {"asrclient": "."}
    target = config["project"]["scripts"]["asrclient"]
    module, _, attr = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_python_m_asrclient_runs_from_the_repository_root() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "asrclient", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m asrclient")
