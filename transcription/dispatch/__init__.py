"""Where a session's audio is recognised: in-process threads (``local``) or, later, Celery workers.

The gateway only sees :class:`SessionHandle`; ``ASR_DISPATCH`` picks the implementation.
"""

from transcription.dispatch.base import Dispatcher, EngineFailure, EventSink, SessionHandle

__all__ = ["Dispatcher", "EngineFailure", "EventSink", "SessionHandle", "get_dispatcher"]

_dispatcher: Dispatcher | None = None


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher, built once from Django settings."""
    global _dispatcher
    if _dispatcher is None:
        from django.conf import settings

        if settings.ASR_DISPATCH == "local":
            from transcription.dispatch.local import LocalDispatcher

            _dispatcher = LocalDispatcher.from_settings()
        else:
            raise RuntimeError(f"Unknown ASR_DISPATCH {settings.ASR_DISPATCH!r}; available: local")
    return _dispatcher
