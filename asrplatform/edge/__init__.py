"""ASGI middleware in front of the whole application (HTTP and WebSocket).

These run before Django or Channels see a request, so they are the one place for rules that must
hold before anything else is read: who the client is (behind trusted proxies only) and how much
of a request body the server accepts and from whom.
"""
