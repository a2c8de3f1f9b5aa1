"""Deepgram's pre-recorded API (``POST /v1/listen``) over our file jobs, for its SDKs unmodified."""
