"""Where a session's audio is recognised: in-process threads (``local``) or, later, Celery workers.

The gateway only sees :class:`SessionHandle`; ``ASR_DISPATCH`` picks the implementation.
"""

from transcription.dispatch.base import Dispatcher, EngineFailure, EventSink, SessionHandle

__all__ = ["Dispatcher", "EngineFailure", "EventSink", "SessionHandle", "get_dispatcher"]

_dispatchers: dict[str, Dispatcher] = {}


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher for ``ASR_DISPATCH``, built once from Django settings."""
    from django.conf import settings

    kind = settings.ASR_DISPATCH
    if kind not in _dispatchers:
        if kind == "local":
            from transcription.dispatch.local import LocalDispatcher

            _dispatchers[kind] = LocalDispatcher.from_settings()
        elif kind == "celery":
            from transcription.dispatch.celery import CeleryDispatcher

            _dispatchers[kind] = CeleryDispatcher()
        else:
            raise RuntimeError(f"Unknown ASR_DISPATCH {kind!r}; available: local, celery")
    return _dispatchers[kind]
