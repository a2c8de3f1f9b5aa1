"""``manage.py asr_workers``: the live inference workers, their sessions and lag."""

import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from transcription.runner import registry


class Command(BaseCommand):
    help = "List live inference workers (from their Redis heartbeats): queue, device, sessions, lag."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sessions", action="store_true", help="also list each worker's session ids")

    def handle(self, *args: Any, sessions: bool, **options: Any) -> None:
        client = redis.Redis.from_url(settings.ASR_REGISTRY_URL)
        workers = registry.live_workers_sync(client, settings.ASR_REDIS_PREFIX)
        if not workers:
            self.stdout.write("No live inference workers.")
            return
        self.stdout.write(f"{'worker':40} {'device':6} {'sessions':>9} {'lag s':>7} {'beat s ago':>10}  model")
        now = time.time()
        for w in workers:
            self.stdout.write(
                f"{w.id:40} {w.device:6} {len(w.sessions):>4}/{w.capacity:<4} {w.lag_s:>7.2f} "
                f"{now - w.beat_at:>10.1f}  {w.model}"
            )
            if sessions:
                for session_id in w.sessions:
                    self.stdout.write(f"    {session_id}")
