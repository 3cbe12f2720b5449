"""The close codes the hub sends (RFC 6455 §7.4.1), in one place.

"The WebSocket Protocol", https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1

==============  ====  ==========================================================
name            code  when the hub sends it
==============  ====  ==========================================================
NORMAL          1000  the client's read side ended without a close frame (a
                      client's own close is answered with its own code instead)
GOING_AWAY      1001  the hub is draining (the reason names the ``since_ledger``
                      that resumes), or the client left a ping unanswered
PROTOCOL_ERROR  1002  a frame that breaks RFC 6455 or RFC 7692 (:mod:`.inbound`)
INVALID_DATA    1007  a text message or close reason that is not UTF-8, or
                      compressed data that does not inflate
POLICY          1008  a client too slow for its send queue's bounds, or past the
                      load drop threshold
TOO_BIG         1009  a message over ``[server] max_message_size``
INTERNAL        1011  a bug met serving this one connection (logged; no other
                      connection is affected)
==============  ====  ==========================================================

An :class:`enum.IntEnum`, so a code is the integer that goes on the wire and compares
equal to it.
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
