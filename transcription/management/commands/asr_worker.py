"""``manage.py asr_worker``: an inference worker (a Celery worker on its own queue, holding sessions)."""

import logging
import os
import secrets
import socket
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from asrplatform.celery import app
from transcription.runner import registry
from transcription.workers.runtime import WorkerRuntime, set_runtime

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run an inference worker: load the models, register in Redis, serve the sessions pinned to it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--capacity", type=int, default=settings.ASR_WORKER_CAPACITY, help="concurrent sessions")
        parser.add_argument("--name", default="", help="worker id (default: host-pid-random)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, capacity: int, name: str, loglevel: str, **options: Any) -> None:
        worker_id = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        runtime = WorkerRuntime(
            worker_id=worker_id,
            queue=registry.worker_queue(settings.ASR_REDIS_PREFIX, worker_id),
            capacity=capacity,
            device=settings.ASR_DEVICE,
        )
        self.stdout.write(f"Loading models for worker {worker_id} ...")
        runtime.start()
        set_runtime(runtime)
        worker_ready.connect(lambda **kw: runtime.mark_ready(), weak=False)
        worker_shutdown.connect(lambda **kw: runtime.stop(), weak=False)
        # Without kombu's ack emulation: with it each task costs two more Redis transactions on this
        # process's main thread (its unacked bookkeeping) to redeliver, hours later, a task whose
        # worker died. A session's audio is never redelivered that way: its queue goes with its
        # worker, and the gateway replays the open utterance to the next one (dispatch/celery.py).
        app.conf.broker_transport_options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "ack_emulation": False}
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                f"--queues={runtime.queue}",
                f"--hostname={worker_id}@%h",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
