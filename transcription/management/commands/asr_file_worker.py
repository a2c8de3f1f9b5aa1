"""``manage.py asr_file_worker``: a Celery worker that runs file transcription jobs, one at a time.

Separate from the inference workers (``asr_worker``) so that a long file never holds up live
streams' audio on the same worker; run as many as the files' backlog needs.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from asrplatform.celery import app
from transcription.engine.models import load_models
from transcription.engine_settings import model_settings_from_django


class Command(BaseCommand):
    help = "Run a file transcription worker (Celery, queue ASR_FILE_QUEUE, one job at a time)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="files", help="worker name (default: files)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, name: str, loglevel: str, **options: Any) -> None:
        self.stdout.write("Loading models for the file worker ...")
        load_models(model_settings_from_django())
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                f"--queues={settings.ASR_FILE_QUEUE}",
                "--prefetch-multiplier=1",  # one job at a time: the next waits in the queue for any worker
                f"--hostname={name}@%h",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
