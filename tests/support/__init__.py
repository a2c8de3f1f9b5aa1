"""Helpers shared by the tests (not test modules): paths, eval audio, the WebSocket client, tenants,
and the one launcher each for the real server and for inference workers (both from bench/)."""
