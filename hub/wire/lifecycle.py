"""How a WebSocket connection closes, as one state machine without I/O.

A connection (:mod:`hub.edge.connection`) is open until a close frame is queued: the
hub's own (too slow, over the load limit, a ping unanswered, a drain), or the answer
to the client's. From then on nothing more is queued; the writer sends what was due
before the close frame, then the frame, and says so; the connection then waits for the
client's close or its ``close_timeout``. A write that fails (the peer is gone) or a bug
met while serving it loses the connection at any point: nothing more can be written.
Whatever the state, the connection ends when its tasks are over and its socket closed.

States:

- ``OPEN``: frames are queued and written.
- ``CLOSING``: the close frame is queued, last; it and what is before it are being
  written.
- ``CLOSE_SENT``: everything queued, the close frame last, has been written.
- ``LOST``: the socket takes nothing more; the connection's tasks are being cancelled.
- ``ENDED``: the socket is closed.

Events: ``CLOSE`` (a close frame is queued), ``SENT`` (everything queued, the close
frame last, has been written), ``LOST`` (a write failed, or a bug ended the
connection), ``END`` (the tasks are over and the socket closed).

Every (state, event) pair, and the state it leads to:

==========  ==========  ==========  ==========  ==========
state       CLOSE       SENT        LOST        END
==========  ==========  ==========  ==========  ==========
OPEN        CLOSING     error       LOST        ENDED
CLOSING     CLOSING     CLOSE_SENT  LOST        ENDED
CLOSE_SENT  CLOSE_SENT  error       LOST        ENDED
LOST        LOST        error       LOST        ENDED
ENDED       ENDED       error       ENDED       error
==========  ==========  ==========  ==========  ==========

The first close wins: a later ``CLOSE`` changes nothing, so a connection closed twice
(a drain reaching a client already closing, say) sends one close frame. ``LOST`` may
come more than once (a bug met after a failed write) and after the end (a shared task
meeting a connection that has just ended). An ``error`` is :class:`LifecycleError`: a
``SENT`` when no close frame was waiting for it, or a second ``END``, is a bug in the
caller, never something a client can cause.
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSE_SENT = "close sent"
    LOST = "lost"
    ENDED = "ended"


class Event(enum.Enum):
    CLOSE = "close"
    SENT = "sent"
    LOST = "lost"
    END = "end"


_S, _E = State, Event
TRANSITIONS: Final[dict[State, dict[Event, State]]] = {
    _S.OPEN: {_E.CLOSE: _S.CLOSING, _E.LOST: _S.LOST, _E.END: _S.ENDED},
    _S.CLOSING: {_E.CLOSE: _S.CLOSING, _E.SENT: _S.CLOSE_SENT, _E.LOST: _S.LOST, _E.END: _S.ENDED},
    _S.CLOSE_SENT: {_E.CLOSE: _S.CLOSE_SENT, _E.LOST: _S.LOST, _E.END: _S.ENDED},
    _S.LOST: {_E.CLOSE: _S.LOST, _E.LOST: _S.LOST, _E.END: _S.ENDED},
    _S.ENDED: {_E.CLOSE: _S.ENDED, _E.LOST: _S.ENDED},
}
"""The table above: state -> event -> new state; a pair not here is an error."""


class LifecycleError(RuntimeError):
    """An event the state cannot take (a bug in the connection, not the client's doing)."""

    def __init__(self, event: Event, state: State) -> None:
        super().__init__(f"cannot handle {event.name} in state {state.name}")
        self.event = event
        self.state = state


class Lifecycle:
    """One connection's place in the table; :meth:`handle` moves it."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.OPEN

    def handle(self, event: Event) -> State:
        """The state ``event`` leads to, which is now the state; raises
        :class:`LifecycleError` (the state unchanged) for a pair the table does not have."""
        new = TRANSITIONS[self.state].get(event)
        if new is None:
            raise LifecycleError(event, self.state)
        self.state = new
        return new
