"""asrplatform: the Django project (settings, ASGI routing, the Celery app)."""
