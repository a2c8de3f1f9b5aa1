"""The decode scheduler: finals before speculative decodes before partials, an intake lane that
runs urgent jobs while every decode thread is busy, stale partials handed back with their place
kept, and partials that get rarer as they queue up."""

import asyncio
import threading
import time

import pytest

from transcription.runner.scheduler import (
    MAX_PARTIAL_INTERVAL_S,
    PARTIAL,
    SPECULATIVE,
    STALE,
    URGENT,
    DecodeScheduler,
)


@pytest.fixture
def scheduler():
    s = DecodeScheduler(2, name="test-sched")
    yield s
    s.shutdown()


def occupy_all(scheduler: DecodeScheduler) -> threading.Event:
    """Take every thread (decode threads and the intake lane) until the returned event is set.

    Later jobs then queue up, so a test can see the order the scheduler picks them in.
    """
    started, release = threading.Semaphore(0), threading.Event()

    def hold() -> None:
        started.release()
        release.wait(30)

    for _ in scheduler.workers:
        scheduler.submit(hold)
    for _ in scheduler.workers:
        assert started.acquire(timeout=10)
    return release


def occupy_decode_threads(scheduler: DecodeScheduler) -> threading.Event:
    """Take the decode threads only, with partial-class work the intake lane may not run."""
    started, release = threading.Semaphore(0), threading.Event()

    def hold() -> None:
        started.release()
        release.wait(30)

    for _ in range(scheduler.threads):
        scheduler.submit(hold, kind=PARTIAL)
    for _ in range(scheduler.threads):
        assert started.acquire(timeout=10)
    return release


def test_the_intake_lane_runs_urgent_jobs_while_every_decode_thread_is_busy(scheduler):
    release = occupy_decode_threads(scheduler)
    try:
        partial = scheduler.submit(lambda: "partial", kind=PARTIAL)
        speculative = scheduler.submit(lambda: "speculative", kind=SPECULATIVE)
        intake = scheduler.submit(lambda: threading.current_thread().name, kind=URGENT)
        assert intake.result(timeout=10) == "test-sched-intake-0"
        time.sleep(0.2)  # the lane is free again and both jobs still queue: it runs urgent work only
        assert not partial.done() and not speculative.done()
        assert scheduler.queued(PARTIAL) == 1 and scheduler.queued(SPECULATIVE) == 1
    finally:
        release.set()
    assert partial.result(timeout=10) == "partial" and speculative.result(timeout=10) == "speculative"


def test_congested_once_every_decode_thread_has_a_decode_waiting(scheduler):
    assert not scheduler.congested()
    release = occupy_decode_threads(scheduler)
    try:
        futures = [scheduler.submit(lambda: None, kind=PARTIAL)]
        futures += [scheduler.submit(lambda: None, kind=URGENT) for _ in range(3)]  # intake: no decode thread's work
        assert not scheduler.congested()
        futures.append(scheduler.submit(lambda: None, kind=SPECULATIVE))
        assert scheduler.congested()  # two decodes wait for two threads
    finally:
        release.set()
    for f in futures:
        f.result(timeout=10)
    assert not scheduler.congested()


def test_a_scheduler_told_not_to_be_thrifty_is_never_congested():
    scheduler = DecodeScheduler(1, thrifty=False, name="test-calm")
    release = occupy_decode_threads(scheduler)
    futures = [scheduler.submit(lambda: None, kind=PARTIAL) for _ in range(3)]
    assert not scheduler.congested()
    release.set()
    for f in futures:
        f.result(timeout=10)
    scheduler.shutdown()


def test_urgent_jobs_overtake_queued_partials_and_speculation():
    scheduler = DecodeScheduler(1, intake_threads=0, name="test-order")  # one thread: run order = pick order
    release = occupy_all(scheduler)
    order: list[str] = []
    futures = [
        scheduler.submit(lambda: order.append("partial-1"), kind=PARTIAL),
        scheduler.submit(lambda: order.append("partial-2"), kind=PARTIAL),
        scheduler.submit(lambda: order.append("speculative"), kind=SPECULATIVE),
        scheduler.submit(lambda: order.append("final"), kind=URGENT),
    ]
    assert scheduler.queued() == 4 and scheduler.queued(PARTIAL) == 2
    release.set()
    for f in futures:
        f.result(timeout=10)
    scheduler.shutdown()
    assert order[:2] == ["final", "speculative"] and set(order[2:]) == {"partial-1", "partial-2"}


def test_a_stale_partial_is_handed_back_and_keeps_its_place(scheduler):
    release = occupy_all(scheduler)
    order: list[str] = []
    ticket = scheduler.new_ticket(time.monotonic() - 1.0)  # due a second ago: its session waits for news
    stale = scheduler.submit(lambda: order.append("old"), kind=PARTIAL, ticket=ticket, still_wanted=lambda: False)
    release.set()
    assert stale.result(timeout=10) is STALE and order == []  # not run: its input was out of date

    release = occupy_all(scheduler)
    later = scheduler.submit(lambda: order.append("later"), kind=PARTIAL)
    again = scheduler.submit(lambda: order.append("again"), kind=PARTIAL, ticket=ticket)
    release.set()
    later.result(timeout=10), again.result(timeout=10)
    assert order[0] == "again"  # due first, so served first although resubmitted last


def test_exceptions_reach_the_caller(scheduler):
    def fail() -> None:
        raise ValueError("engine broke")

    with pytest.raises(ValueError, match="engine broke"):
        asyncio.run(scheduler.run(fail))


def test_partial_interval_stretches_with_queued_partials_up_to_a_bound(scheduler):
    assert scheduler.partial_interval(0.5) == 0.5
    release = occupy_all(scheduler)
    futures = [scheduler.submit(lambda: None, kind=PARTIAL) for _ in range(2)]
    assert scheduler.partial_interval(0.5) == pytest.approx(1.0)  # one waiting partial per thread
    futures += [scheduler.submit(lambda: None, kind=PARTIAL) for _ in range(8)]
    assert scheduler.partial_interval(0.5) == MAX_PARTIAL_INTERVAL_S
    release.set()
    for f in futures:
        f.result(timeout=10)
    assert scheduler.partial_interval(0.5) == 0.5
