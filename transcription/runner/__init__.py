"""The runner: what recognises a session, below both ``dispatch/`` (the gateway's side) and ``workers/``
(the Celery side), which import it and never each other.

- ``contract``: the session handle the gateway holds, the typed message that opens a session, and
  the refusals when nothing can take one.
- ``scheduler``: the decode scheduler (finals before partials) on a few engine threads.
- ``loop``: the per-session loop feeding the engine in arrival order; embedded mode and every
  inference worker run this same loop.
- ``registry``: the Redis registry of live inference workers, written by workers and read by the
  Celery dispatcher.

This ``__init__`` imports nothing, so a submodule never loops back through its own package.
"""
