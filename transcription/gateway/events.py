"""What the session core takes from a client and sends back, independent of any wire format.

A protocol adapter turns its frames into these commands and these events into its frames; the
core never sees JSON. Transcript results are the engine's own ``TranscriptEvent``.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from transcription.engine import TranscriptEvent
from transcription.gateway.errors import ProtocolError

# --- client → core --------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    options: dict[str, Any]  # the session settings the client asked for (engine.parse_start checks them)
    resume: Any = None  # the raw resume request, checked by gateway.resume


@dataclass(frozen=True)
class Audio:
    data: bytes


@dataclass(frozen=True)
class Finalize:
    """End the open utterance now; the session goes on."""


@dataclass(frozen=True)
class Keepalive:
    """Nothing to do but reset the idle timer."""


@dataclass(frozen=True)
class Stop:
    """Finalize, send the last results, close normally."""


Command = Start | Audio | Finalize | Keepalive | Stop

# --- core → client --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    session_id: str
    config: dict[str, Any]
    resume_token: str
    limits: dict[str, Any]
    resumed: dict[str, Any] | None = None  # resumed=True, resume_from_s, next_segment on a resume


@dataclass(frozen=True)
class Failed:
    """The session ends with this error; the adapter sends it and closes with its code."""

    error: ProtocolError


@dataclass(frozen=True)
class Closed:
    """The session ended normally; the adapter sends it and closes normally.

    ``audio_seconds`` is what was metered (once per channel of a multichannel session);
    ``duration_s`` how long the audio lasted, where it differs (None: the same)."""

    session_id: str | None
    audio_seconds: float
    segments: int
    duration_s: float | None = None


@dataclass(frozen=True)
class ResumedElsewhere:
    """Another connection took this session over; the adapter tells the client and closes normally."""


Event = Ready | TranscriptEvent | Failed | Closed | ResumedElsewhere


class Transport(Protocol):
    """What the core needs from a connection: send an event, and hang up with a close code."""

    async def deliver(self, event: Event) -> None: ...

    async def hang_up(self, close_code: int) -> None: ...


@dataclass
class Traits:
    """What the core must know of the protocol a connection speaks."""

    protocol: str = "v1"  # recorded on the session row (Session.Protocol)
    resumable: bool = True  # a dropped connection parks the session for a resume
    stable_partials: bool = False  # its clients append interim text: the engine keeps it (SessionConfig)
    # The options of a session that starts with audio, under what a WAV header says: a protocol
    # whose settings came with the connection (a query string, a message that did not start it).
    implicit_start: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # the session row's label (Session.label): the client system's name for it
