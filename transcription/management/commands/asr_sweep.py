"""``manage.py asr_sweep``: close the live streams a killed gateway left open, once (for cron)."""

from typing import Any

from django.core.management.base import BaseCommand

from transcription import sweeper


class Command(BaseCommand):
    help = "Close, as 'lost', live sessions whose gateway stopped refreshing them (every server also does this)."

    def handle(self, *args: Any, **options: Any) -> None:
        closed = sweeper.sweep_once()
        self.stdout.write(f"{closed} lost session(s) closed (no heartbeat for {sweeper.stale_after_s():g} s).")
