"""Process-wide state: every singleton this process keeps, held in one registry and reset in one call.

An owner builds its singleton lazily with :func:`get` (``get(("admission", url), factory)``), or
installs one it was handed with :func:`put`; tests start each test from none with :func:`reset`.
Plain Python on purpose (no Django, no project imports), so any layer may use it without a cycle.

Held here, by key (owner):

- ``("dispatcher", kind)`` (transcription.dispatch): the engine pool or the Celery publisher; closed on reset.
- ``("admission", url)`` (transcription.gateway.admission): stream slots per tenant.
- ``("gateway.registry",)`` (transcription.gateway.registry): connected and parked sessions; other
  modules import it by name, so reset clears it in place instead of dropping it.
- ``("redis.async", loop, url)`` (transcription.redis_clients): an asyncio Redis client is bound to its loop.
- ``("redis.worker_registry", url)`` (transcription.metrics): the /metrics reader of the worker registry.
- ``("file_jobs.executor",)`` (transcription.file_jobs): embedded mode's file-job threads.
- ``("webhooks.executor",)`` (transcription.webhooks): the threads that send callbacks.
- ``("worker.runtime",)`` (transcription.workers.runtime): an inference worker's runtime, put by ``asr_worker``.

Deliberately not here, and not reset: the model caches of ``transcription.engine.models`` (loading
Whisper and the VAD takes seconds, they depend on nothing a test changes, and the engine stays free
of the rest of the project), and the ``functools`` memos of pure functions (engine.registry,
engine.text, asrplatform.edge.client_address): keyed on their whole input, they cannot go stale.
"""

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class _Entry:
    value: Any
    close: Callable[[Any], None] | None = None
    clear: Callable[[Any], None] | None = None


_entries: dict[Hashable, _Entry] = {}
_lock = threading.RLock()


def get(
    key: Hashable,
    factory: Callable[[], T],
    *,
    close: Callable[[T], None] | None = None,
    clear: Callable[[T], None] | None = None,
) -> T:
    """The process's value for ``key``, built by ``factory`` on first use.

    On :func:`reset`, an entry with ``clear`` is cleared in place and kept (for objects other modules
    hold by name); any other is dropped, after ``close`` if given (threads, connections).
    """
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            entry = _entries[key] = _Entry(factory(), close, clear)
        return entry.value


def put(key: Hashable, value: T, *, close: Callable[[T], None] | None = None) -> T:
    """Install a value built elsewhere (a worker's runtime), replacing any before it."""
    with _lock:
        _entries[key] = _Entry(value, close)
    return value


def reset() -> None:
    """For tests: clear the kept entries in place, close and drop the others; model caches stay."""
    with _lock:
        entries = list(_entries.items())
        for key, entry in entries:
            if entry.clear is None:
                del _entries[key]
    for _, entry in entries:
        if entry.clear is not None:
            entry.clear(entry.value)
        elif entry.close is not None:
            entry.close(entry.value)
