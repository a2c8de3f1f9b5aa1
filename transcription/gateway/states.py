"""A gateway session's states and the transitions allowed between them, in one place.

WAITING ──start/audio──▶ STREAMING ──client gone──▶ PARKED ──grace over──▶ ENDING ──▶ CLOSED
   │                        │                         └──resumed elsewhere──────────▶ CLOSED
   └──────────error─────────┴──stop/error/idle/limit──▶ ENDING ──▶ CLOSED
"""

import enum


class State(enum.Enum):
    WAITING = "waiting"  # connected, no start yet
    STREAMING = "streaming"  # the engine has the session; audio flows
    PARKED = "parked"  # the client went away; the engine waits for it for the resume grace period
    ENDING = "ending"  # finishing the engine, storing, telling the client
    CLOSED = "closed"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.WAITING: frozenset({State.STREAMING, State.ENDING}),
    State.STREAMING: frozenset({State.PARKED, State.ENDING}),
    State.PARKED: frozenset({State.ENDING, State.CLOSED}),  # CLOSED: handed over to a resuming connection
    State.ENDING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}
