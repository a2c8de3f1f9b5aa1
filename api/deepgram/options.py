"""A pre-recorded request's query parameters as a file job's options, its callback and its extras.

The parameters mean what they mean on the live ``/v1/listen``, so both read them with the live
adapter's one parser (transcription/gateway/protocols/deepgram.py): Deepgram's model names stand
for our default model, ``keywords``/``keyterm`` become hotwords, formatting hints are accepted and
ignored, and features we lack (diarize, redact, summarize, …) are refused. Only what differs for
a file is handled here: the callback, ``utterances``, words always (Deepgram's response has them),
and ``encoding`` (headerless audio, which a file job cannot decode).
"""

from dataclasses import dataclass
from typing import Any

from django.http import QueryDict

from api.deepgram.errors import DeepgramError
from transcription.engine_settings import session_limits
from transcription.gateway.errors import ProtocolError
from transcription.gateway.protocols.deepgram import OFF, parse_query


@dataclass(frozen=True)
class ListenOptions:
    options: dict[str, Any]  # the file job's options
    utterances: bool
    callback: str | None
    callback_method: str


def _flag(name: str, values: list[str]) -> bool:
    value = values[-1].strip().lower()
    if value in ("true", "1"):
        return True
    if value in OFF:
        return False
    raise DeepgramError(400, "bad_request", f"'{name}' must be true or false, got {values[-1]!r}.")


def parse(query: QueryDict) -> ListenOptions:
    params = {name: query.getlist(name) for name in query}
    callback = params.pop("callback", [""])[-1] or None
    callback_method = params.pop("callback_method", ["POST"])[-1]
    if "encoding" in params:
        message = (
            "Raw (headerless) audio is not supported: send a file (WAV, FLAC, MP3, OGG, WebM, M4A), no 'encoding'."
        )
        raise DeepgramError(400, "unsupported_format", message)
    limits = session_limits()
    try:
        request = parse_query(params, limits)
    except ProtocolError as error:
        raise DeepgramError(400, "bad_request", error.message) from None
    # Deepgram's response always has the words: of the model the job's start chooses, if it gives them.
    job_options = {**request.options, "words_when_available": True}
    utterances = _flag("utterances", params["utterances"]) if "utterances" in params else False
    return ListenOptions(job_options, utterances, callback, callback_method)
