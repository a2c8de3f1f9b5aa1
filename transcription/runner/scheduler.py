"""The decode scheduler: engine work of every session on a few threads, finals before partials.

A plain thread pool runs work in arrival order, so under load a final waits behind other
sessions' partials. Here each job has a class:

- ``URGENT``: audio intake and finalize (VAD, and the final's decode when an endpoint is found),
  and opening a session. Cheap unless a final is due, and a final is what users wait for.
- ``SPECULATIVE``: decoding an utterance during its trailing silence, so that its final is ready
  when the endpoint is confirmed (see StreamingSession.decode_partial); also an utterance's first
  partial, the longest wait for news a speaker has (SessionLoop._decode_class, in loop.py).
- ``PARTIAL``: interim text. Only the newest audio matters, so a partial that finds its session
  has fresh audio queued is handed back undone (``STALE``): the session takes the audio in first,
  then asks again keeping its original place in line, so it is neither starved nor out of date
  (the session hands a partial back at most once: SessionLoop._decode_partial).
  Partials are served earliest deadline first (see :meth:`new_ticket`): a session's first partial
  of an utterance, whose user has seen nothing yet, goes before another's tenth.

Partials also get rarer as load rises: :meth:`partial_interval` stretches the interval by how many
partials wait per thread, before finals ever have to wait for them.

When decodes queue up faster than the threads clear them, :meth:`congested` says so, and a
session's final then takes a cheaper decode (a short final's Whisper window 15 s instead of 30 s,
see recognizer.THRIFTY_SHORT_FINAL_WINDOW_S): each costly final would delay every waiting job.

Besides its decode threads the scheduler keeps an *intake lane*: a thread that runs only URGENT
jobs. Without it, when every decode thread is busy with a full-window decode (half a second on
this project's CPU), a session's audio intake waits that long just to run its VAD, and its partial
waits again after that; at ten streams that put the worst partial gap over 1.5 s. The lane adds no
decode capacity: a final it runs waits for a free CTranslate2 replica like any other decode.
"""

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from transcription.engine.batching import set_urgent

URGENT, SPECULATIVE, PARTIAL = 0, 1, 2
MAX_PARTIAL_INTERVAL_S = 1.2  # keeps "a partial at least every 1.5 s" while decodes take ~0.3 s


class _Stale:
    """Returned instead of a result: the job was not run because its input is out of date."""


STALE = _Stale()


class DecodeScheduler:
    def __init__(
        self, threads: int, *, intake_threads: int = 1, thrifty: bool = True, name: str = "asr-engine"
    ) -> None:
        """``threads`` run jobs of every class; ``intake_threads`` more run URGENT jobs only.
        ``thrifty=False``: never report :meth:`congested`, so finals always take their best decode."""
        self.threads = threads
        self.intake_threads = intake_threads
        self.thrifty = thrifty
        self._heap: list[tuple[int, int, int, Callable[[], Any], Callable[[], bool] | None, Future]] = []
        lock = threading.Lock()
        self._cv = threading.Condition(lock)  # decode threads wait here
        self._intake_cv = threading.Condition(lock)  # intake threads wait here
        self._seq = itertools.count()
        self._waiting = [0, 0, 0]  # jobs queued per class
        self._closed = False
        self.workers = [
            threading.Thread(target=self._work, args=(False,), name=f"{name}-{i}", daemon=True) for i in range(threads)
        ] + [
            threading.Thread(target=self._work, args=(True,), name=f"{name}-intake-{i}", daemon=True)
            for i in range(intake_threads)
        ]
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
            if kind == URGENT:
                self._intake_cv.notify()  # whichever lane wakes first takes it; the other waits again
            self._cv.notify()
        return future

    async def run(self, fn: Callable[[], Any], **kwargs: Any) -> Any:
        return await asyncio.wrap_future(self.submit(fn, **kwargs))

    def queued(self, kind: int | None = None) -> int:
        with self._cv:
            return sum(self._waiting) if kind is None else self._waiting[kind]

    def congested(self) -> bool:
        """Whether every decode thread has a decode waiting behind it: a costly final now delays them all."""
        waiting = self._waiting[SPECULATIVE] + self._waiting[PARTIAL]  # read without the lock: a hint
        return self.thrifty and waiting >= self.threads

    def partial_interval(self, base_s: float) -> float:
        """The partial interval to use now: ``base_s`` when partials do not queue, longer when they do."""
        backlog = self._waiting[PARTIAL] / self.threads  # read without the lock: a hint, not a count
        return min(max(base_s, MAX_PARTIAL_INTERVAL_S), base_s * (1.0 + backlog))

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            self._intake_cv.notify_all()

    def _has_job(self, urgent_only: bool) -> bool:
        return bool(self._heap) and (not urgent_only or self._heap[0][0] == URGENT)

    def _work(self, urgent_only: bool) -> None:
        cv = self._intake_cv if urgent_only else self._cv
        while True:
            with cv:
                while not self._has_job(urgent_only) and not self._closed:
                    cv.wait()
                if not self._has_job(urgent_only):
                    return  # closed, and nothing left that this thread may run
                kind, _, _, fn, still_wanted, future = heapq.heappop(self._heap)
                self._waiting[kind] -= 1
            set_urgent(kind == URGENT)  # a batched decode (engine/batching.py) waits less for others
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
