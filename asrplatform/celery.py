"""The Celery app, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from transcription import instruments

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asrplatform.settings.base")

app = Celery("asrplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_shutdown.connect  # the worker's main process (it runs the tasks with --pool=solo)
@worker_process_shutdown.connect  # each child of a prefork pool
def mark_prometheus_process_dead(**kwargs: object) -> None:
    """With PROMETHEUS_MULTIPROC_DIR: a worker process that ends leaves no live gauges behind."""
    instruments.mark_process_dead(os.getpid())
