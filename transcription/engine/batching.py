"""Cross-session batching of Whisper decodes: concurrent decodes of one model run as one batch.

On a GPU one encoder pass and one ``generate`` over eight utterances costs little more than over
one, because the work per kernel launch grows while the launches stay the same; that is how GPU
servers reach their published stream counts. On a CPU the same matrix work is done either way
(``python -m bench.batching`` measures it), so batching is off unless ``ASR_BATCH_WINDOW_MS`` says.

Decode threads (the scheduler's) call :meth:`DecodeBatcher.run` and block. The first caller of a
batch leads it: it waits for others to join — up to ``window_s`` for a partial, up to
``urgent_wait_s`` (a few ms) once a final is in it, since finals are what users wait for — then
runs the whole batch and hands each caller its own result. Only requests that can share a batch
join one (same encoder window, beam size and suppressed tokens); their prompts may differ.
"""

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transcription import instruments

_decode_kind = threading.local()


def set_urgent(urgent: bool) -> None:
    """Called by the scheduler before each job: whether this thread's decode is a final's."""
    _decode_kind.urgent = urgent


def is_urgent() -> bool:
    return bool(getattr(_decode_kind, "urgent", True))


@dataclass(frozen=True)
class BatchSettings:
    """``ASR_BATCH_WINDOW_MS`` (0: off), ``ASR_BATCH_MAX``, ``ASR_BATCH_FINAL_WAIT_MS``."""

    window_ms: int = 0  # how long a partial's decode waits for others to join its batch
    max_size: int = 8
    final_wait_ms: int = 2  # the most a final's decode waits for a batch


@dataclass
class DecodeRequest:
    """One utterance's fitted decode: its log-mel window and decoder prompt."""

    features: np.ndarray
    prompt: list[int]
    max_length: int


@dataclass
class _Batch:
    key: Hashable
    due: float
    requests: list[DecodeRequest] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


RunBatch = Callable[[Hashable, Sequence[DecodeRequest]], list[Any]]


class DecodeBatcher:
    """Gathers concurrent decodes into batches of at most ``max_size`` (see the module's docstring)."""

    def __init__(self, run_batch: RunBatch, *, max_size: int, window_s: float, urgent_wait_s: float) -> None:
        self.run_batch = run_batch
        self.max_size = max(1, max_size)
        self.window_s = window_s
        self.urgent_wait_s = min(urgent_wait_s, window_s)
        self._open: dict[Hashable, _Batch] = {}
        self._cv = threading.Condition()
        self.batches = 0  # batches run, and the requests in them: their ratio is the mean batch size
        self.requests = 0

    def run(self, key: Hashable, request: DecodeRequest) -> Any:
        """This request's result, decoded in a batch with whatever joined it in time."""
        wait_s = self.urgent_wait_s if is_urgent() else self.window_s
        with self._cv:
            batch = self._open.get(key)
            if batch is not None:
                batch.requests.append(request)
                index = len(batch.requests) - 1
                batch.due = min(batch.due, time.monotonic() + wait_s)
                if len(batch.requests) >= self.max_size:
                    del self._open[key]
                self._cv.notify_all()
            else:
                batch = _Batch(key, time.monotonic() + wait_s, [request])
                index = 0
                if self.max_size > 1:
                    self._open[key] = batch
                self._lead(batch)
        if index:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.results[index]

    def _lead(self, batch: _Batch) -> None:
        """Wait (the lock held, released while waiting) until the batch is due or full, then run it."""
        while self._open.get(batch.key) is batch and (remaining := batch.due - time.monotonic()) > 0:
            self._cv.wait(remaining)
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        self._cv.release()
        try:
            batch.results = self.run_batch(batch.key, batch.requests)
        except BaseException as error:  # every caller of the batch gets it
            batch.error = error
        finally:
            self._cv.acquire()
            self.batches += 1
            self.requests += len(batch.requests)
            batch.done.set()
        instruments.observe_decode_batch(len(batch.requests))
