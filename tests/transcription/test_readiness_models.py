"""An embedded server is not ready until its models are in memory: a load balancer (and the
benchmark, and the tests' server fixture) must not send the first streams to a process that would
spend their first seconds loading models and fall behind them."""

import threading

import pytest
from django.test import Client

from transcription.dispatch.local import LocalDispatcher
from transcription.engine_settings import model_settings_from_django
from transcription.runner.loop import SessionRunner

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatcher(monkeypatch):
    """The process's embedded dispatcher, but with a decode thread of its own that the test holds."""
    runner = SessionRunner(models=model_settings_from_django(), workers=1, max_backlog_s=5.0, intake_threads=0)
    dispatcher = LocalDispatcher(runner)
    monkeypatch.setattr("transcription.dispatch.get_dispatcher", lambda: dispatcher)
    yield dispatcher
    dispatcher.close()


def preload_behind(dispatcher: LocalDispatcher, held: threading.Event) -> threading.Event:
    """Preload queued behind a job that waits for ``held``; the returned event is set once it ended."""
    dispatcher.scheduler.submit(held.wait)
    dispatcher.preload()
    done = threading.Event()
    dispatcher.scheduler.submit(done.set)  # runs after the preload on the one decode thread
    return done


def test_readiness_waits_for_the_models_then_says_they_are_loaded(dispatcher, settings):
    settings.ASR_FINAL_MODEL = "base"  # preloaded as well: every session's finals use it
    held = threading.Event()
    done = preload_behind(dispatcher, held)

    loading = Client().get("/readyz")
    assert loading.status_code == 503 and loading.json()["checks"]["models"] == "loading"

    held.set()
    assert done.wait(120)
    ready = Client().get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["models"] == "ok"
    assert {"tiny.en", "base"} <= set(loaded_recognizers(dispatcher))


def test_a_final_model_that_cannot_load_keeps_the_server_unready(dispatcher, settings):
    settings.ASR_FINAL_MODEL = "no-such-model"
    held = threading.Event()
    held.set()
    assert preload_behind(dispatcher, held).wait(120)
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["models"] == "failed"


def loaded_recognizers(dispatcher: LocalDispatcher) -> list[str]:
    from transcription.engine.models import _recognizers

    return [getattr(recognizer, "name", "") for recognizer in _recognizers.values()]
