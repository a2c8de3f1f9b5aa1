"""The decode scheduler: engine work of every session on a few threads, finals before partials.

A plain thread pool runs work in arrival order, so under load a final waits behind other
sessions' partials. Here each job has a class:

- ``URGENT``: audio intake and finalize (VAD, and the final's decode when an endpoint is found),
  and opening a session. Cheap unless a final is due, and a final is what users wait for.
- ``SPECULATIVE``: decoding an utterance during its trailing silence, so that its final is ready
  when the endpoint is confirmed (see StreamingSession.decode_partial).
- ``PARTIAL``: interim text. Only the newest audio matters, so a partial that finds its session
  has fresh audio queued is handed back undone (``STALE``): the session takes the audio in first,
  then asks again keeping its original place in line, so it is neither starved nor out of date
  (the session hands a partial back at most once: LocalSessionHandle._decode_partial).
  Partials are served earliest deadline first (see :meth:`new_ticket`): a session's first partial
  of an utterance, whose user has seen nothing yet, goes before another's tenth.

Partials also get rarer as load rises: :meth:`partial_interval` stretches the interval by how many
partials wait per thread, before finals ever have to wait for them.
"""

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

URGENT, SPECULATIVE, PARTIAL = 0, 1, 2
MAX_PARTIAL_INTERVAL_S = 1.2  # keeps "a partial at least every 1.5 s" while decodes take ~0.3 s


class _Stale:
    """Returned instead of a result: the job was not run because its input is out of date."""


STALE = _Stale()


class DecodeScheduler:
    def __init__(self, threads: int, *, name: str = "asr-engine") -> None:
        self.threads = threads
        self._heap: list[tuple[int, int, int, Callable[[], Any], Callable[[], bool] | None, Future]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._waiting = [0, 0, 0]  # jobs queued per class
        self._closed = False
        self.workers = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for worker in self.workers:
            worker.start()

    @staticmethod
    def new_ticket(due: float | None = None) -> int:
        """A place in line within a class: the time (monotonic, ms) the job is due; now by default.

        Partials are due when their session's previous partial plus its interval says, so the
        session that has waited longest for news goes first (earliest deadline first); a partial
        handed back STALE asks again with the same ticket.
        """
        return int((time.monotonic() if due is None else due) * 1000)

    def submit(
        self,
        fn: Callable[[], Any],
        *,
        kind: int = URGENT,
        ticket: int | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> Future:
        """Queue ``fn``; ``still_wanted`` is asked (on the worker thread) just before it runs."""
        future: Future = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("scheduler is shut down")
            order = self.new_ticket() if ticket is None else ticket
            heapq.heappush(self._heap, (kind, order, next(self._seq), fn, still_wanted, future))
            self._waiting[kind] += 1
            self._cv.notify()
        return future

    async def run(self, fn: Callable[[], Any], **kwargs: Any) -> Any:
        return await asyncio.wrap_future(self.submit(fn, **kwargs))

    def queued(self, kind: int | None = None) -> int:
        with self._cv:
            return sum(self._waiting) if kind is None else self._waiting[kind]

    def partial_interval(self, base_s: float) -> float:
        """The partial interval to use now: ``base_s`` when partials do not queue, longer when they do."""
        backlog = self._waiting[PARTIAL] / self.threads  # read without the lock: a hint, not a count
        return min(max(base_s, MAX_PARTIAL_INTERVAL_S), base_s * (1.0 + backlog))

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed and not self._heap:
                    return
                kind, _, _, fn, still_wanted, future = heapq.heappop(self._heap)
                self._waiting[kind] -= 1
            self._run_one(fn, still_wanted, future)

    @staticmethod
    def _run_one(fn: Callable[[], Any], still_wanted: Callable[[], bool] | None, future: Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            if still_wanted is not None and not still_wanted():
                future.set_result(STALE)
            else:
                future.set_result(fn())
        except BaseException as exc:  # handed to the awaiting session, never lost
            future.set_exception(exc)
