"""Inference workers (the Celery side): the runtime inside each one, which runs sessions through
the runner (transcription/runner/) and heartbeats into its registry of live workers."""
