"""Embedded dispatch: every session runs on the session loop (runner/loop.py) inside this process."""

from transcription.dispatch.base import Dispatcher
from transcription.engine import SessionConfig
from transcription.engine.models import ModelSettings
from transcription.runner.contract import EventSink, OpenSession
from transcription.runner.loop import SessionLoop, SessionRunner
from transcription.runner.scheduler import DecodeScheduler


class LocalDispatcher(Dispatcher):
    def __init__(self, runner: SessionRunner) -> None:
        self.runner = runner

    @classmethod
    def from_settings(cls) -> "LocalDispatcher":
        return cls(SessionRunner.from_settings())

    @property
    def scheduler(self) -> DecodeScheduler:
        return self.runner.scheduler

    @property
    def model_settings(self) -> ModelSettings:
        return self.runner.model_settings

    @model_settings.setter
    def model_settings(self, value: ModelSettings) -> None:
        """Sessions opened from now on load these models (tests point a running server at others)."""
        self.runner.model_settings = value

    @property
    def engine_name(self) -> str:
        return self.runner.engine_name

    def languages(self) -> tuple[str, ...]:
        return self.runner.languages()

    def preload(self) -> None:
        """Load the models (the deployment's final model too) in the background so the first
        session does not wait for them."""
        from django.conf import settings

        self.runner.preload(tuple(name for name in [settings.ASR_FINAL_MODEL] if name))

    @property
    def models_state(self) -> str:
        """ "loading", "ok", "failed" or "not preloaded", for /readyz."""
        return self.runner.models_state

    def close(self) -> None:
        self.scheduler.shutdown()

    async def open_session(
        self,
        *,
        session_id: str,
        config: SessionConfig,
        sink: EventSink,
        tenant_id: int | None = None,
        resume_at_s: float = 0.0,
        first_segment: int = 0,
    ) -> SessionLoop:
        message = OpenSession(
            session_id=session_id,
            tenant_id=tenant_id,
            config=config,
            resume_at_s=resume_at_s,
            first_segment=first_segment,
        )
        return self.runner.open(message, sink)
