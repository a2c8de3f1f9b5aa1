"""The WebSocket edge: one GatewaySession per connection, behind thin per-protocol adapters.

- ``session``: GatewaySession, the session's life as an explicit state machine (the core);
- ``consumer``: the Channels consumer for protocol v1, a thin adapter over the core;
- ``protocols/``: each wire protocol's parsing and rendering (v1 today);
- ``events``: the typed commands the core takes and the typed events it sends;
- ``errors``: ProtocolError and the close codes, shared by every protocol;
- ``limits``: admission (quota, concurrency), metering and per-connection limits;
- ``admission``: concurrency slots across gateway processes (Redis) or in one process;
- ``resume``: resume tokens and taking over a dropped session;
- ``registry``: this process's live and parked sessions (process-wide state, in one place);
- ``watchdog``: idle, start, session-length and usage checks that survive database and Redis errors;
- ``db``: the ORM boundary, async wrappers around services and selectors;
- ``routing``: the WebSocket URLs, and a 404 for any other path.
"""
