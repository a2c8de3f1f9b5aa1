"""OpenAI's audio API over our file jobs: the OpenAI SDK and the apps built on it, unmodified.

``views`` answers ``POST /v1/audio/transcriptions`` (whole, or as server-sent events with
``stream=true``), ``POST /v1/audio/translations`` (Whisper's translate task: English text) and
``GET /v1/models``. ``forms`` reads OpenAI's multipart form, ``progress`` follows the file job,
``formats`` writes OpenAI's response formats and stream events, ``errors`` its error shape.
"""
