"""Where a session's audio is recognised: in-process threads (``local``) or, later, Celery workers.

The gateway only sees :class:`SessionHandle`; ``ASR_DISPATCH`` picks the implementation.
"""

from asrplatform import process_state
from transcription.dispatch.base import Dispatcher, EngineFailure, EventSink, SessionHandle

__all__ = ["Dispatcher", "EngineFailure", "EventSink", "SessionHandle", "get_dispatcher"]


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher for ``ASR_DISPATCH``, built once from Django settings."""
    from django.conf import settings

    kind = settings.ASR_DISPATCH
    return process_state.get(("dispatcher", kind), lambda: _build(kind), close=Dispatcher.close)


def _build(kind: str) -> Dispatcher:
    if kind == "local":
        from transcription.dispatch.local import LocalDispatcher

        return LocalDispatcher.from_settings()
    if kind == "celery":
        from transcription.dispatch.celery import CeleryDispatcher

        return CeleryDispatcher()
    raise RuntimeError(f"Unknown ASR_DISPATCH {kind!r}; available: local, celery")
