"""permessage-deflate (RFC 7692) for the server: negotiate, compress once, inflate bounded.

Compression, "Compression Extensions for WebSocket", https://www.rfc-editor.org/rfc/rfc7692

- :func:`negotiate` picks the first acceptable ``permessage-deflate`` offer and always
  answers ``server_no_context_takeover; client_no_context_takeover`` (§7.1.1.1 and
  §7.1.1.2 let a server add both to any offer). Without server context a message's
  compressed bytes depend only on the message and :class:`DeflateParams`, so a stream
  message is compressed once per (API version, parameters) and the very bytes are
  shared across subscribers (:func:`compressed_text_frame`); without client context no
  connection keeps zlib state between messages, so idle connections cost no memory.
- Compressed client messages are inflated by :mod:`hub.wire.inbound` through an
  :class:`Inflater` that never produces more than ``max_message_size`` bytes (wsproto's
  own ``PerMessageDeflate`` inflates without any bound and keeps a compressor per
  connection); past the bound the connection closes 1009.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Final

import msgspec

from hub.wire.frames import text_frame

NAME: Final = "permessage-deflate"
_TRAILER: Final = b"\x00\x00\xff\xff"
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_WINDOW_BITS: Final = re.compile(r"[89]|1[0-5]")
_FLAGS: Final = ("server_no_context_takeover", "client_no_context_takeover")
_INFLATE_WINDOW_BITS: Final = 15
"""A 32 KiB window inflates what any client window (8..15 bits) produced."""


class DeflateParams(msgspec.Struct, frozen=True):
    """Everything a compressed frame's bytes depend on; hashable, a cache key.

    ``window_bits`` is the server's LZ77 window (9..15: zlib cannot deflate raw with
    8); as a policy it is the largest the hub will use. Messages shorter than
    ``min_size`` bytes go uncompressed, as does any message deflate does not shrink.
    """

    window_bits: int = 15
    level: int = 6
    min_size: int = 256

    def __post_init__(self) -> None:
        if not 9 <= self.window_bits <= 15:
            raise ValueError(f"window_bits must be 9..15, not {self.window_bits}")
        if not -1 <= self.level <= 9:
            raise ValueError(f"level must be -1..9, not {self.level}")
        if self.min_size < 0:
            raise ValueError(f"min_size must be >= 0, not {self.min_size}")


class Agreement(msgspec.Struct, frozen=True):
    """A negotiated permessage-deflate: the frame parameters and the answer to send."""

    params: DeflateParams
    response: str
    """The extension parameters of the response, after ``permessage-deflate; ``."""

    @property
    def header(self) -> str:
        """The whole ``Sec-WebSocket-Extensions`` response value."""
        return f"{NAME}; {self.response}"


def negotiate(offers: Iterable[str], policy: DeflateParams | None = None) -> Agreement | None:
    """The first acceptable offer's agreement, or None (no offer, or none acceptable).

    ``offers`` are ``Sec-WebSocket-Extensions`` values, whole or already split at
    commas (wsproto's ``Request.extensions``). An offer is declined, as RFC 7692 §7
    requires, for an unknown or repeated parameter or an invalid value; and for
    ``server_max_window_bits=8``, which zlib cannot honour.
    """
    policy = policy or DeflateParams()
    for text in offers:
        for offer in _split(text, ","):
            params = _offer_params(offer)
            if params is not None:
                agreement = _accept(params, policy)
                if agreement is not None:
                    return agreement
    return None


def _accept(params: dict[str, str | None], policy: DeflateParams) -> Agreement | None:
    bits = policy.window_bits
    requested = params.get("server_max_window_bits")
    if requested is not None:
        if int(requested) < 9:
            return None
        bits = min(bits, int(requested))
    response = "; ".join(_FLAGS)
    if requested is not None or bits < 15:
        response += f"; server_max_window_bits={bits}"
    # client_max_window_bits is never answered: the Inflater's window fits any client.
    return Agreement(msgspec.structs.replace(policy, window_bits=bits), response)


def _offer_params(offer: str) -> dict[str, str | None] | None:
    """An offer's parameters if it is a valid permessage-deflate offer, else None."""
    name, *pieces = _split(offer, ";")
    if name.strip() != NAME:
        return None
    params: dict[str, str | None] = {}
    for piece in pieces:
        key, equals, raw = (part.strip() for part in piece.partition("="))
        if not key and not equals:
            continue
        value = _unquote(raw) if equals else None
        if not _TOKEN.fullmatch(key) or key in params or (equals and value is None):
            return None
        params[key] = value
    return params if all(_valid(key, value) for key, value in params.items()) else None


def _valid(key: str, value: str | None) -> bool:
    if key in _FLAGS:
        return value is None
    if key == "server_max_window_bits":
        return value is not None and bool(_WINDOW_BITS.fullmatch(value))
    if key == "client_max_window_bits":
        return value is None or bool(_WINDOW_BITS.fullmatch(value))
    return False


def _unquote(raw: str) -> str | None:
    """A token, or a quoted string whose content is a token (RFC 6455 §9.1); else None."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw if _TOKEN.fullmatch(raw) else None


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside double quotes."""
    parts, start, quoted, escaped = [], 0, False, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:at])
            start = at + 1
    parts.append(text[start:])
    return parts


def deflate_message(payload: bytes, params: DeflateParams) -> bytes:
    """``payload`` compressed as one permessage-deflate message, with no context kept.

    Raw DEFLATE at ``params.window_bits``, flushed with an empty stored block whose
    ``00 00 ff ff`` tail is then removed (RFC 7692 §7.2.1).
    """
    compressor = zlib.compressobj(params.level, zlib.DEFLATED, -params.window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[: -len(_TRAILER)]


def compressed_text_frame(payload: bytes, params: DeflateParams) -> bytes:
    """The frame for ``payload`` on a connection that negotiated ``params``.

    Compressed (RSV1 set) when ``payload`` is at least ``params.min_size`` bytes and
    deflate makes it smaller; otherwise the plain text frame, which is just as valid.
    """
    if len(payload) >= params.min_size:
        data = deflate_message(payload, params)
        if len(data) < len(payload):
            return text_frame(data, compressed=True)
    return text_frame(payload)


class MessageTooBig(Exception):
    """A compressed message inflates past the bound; the connection closes with 1009."""


class Inflater:
    """One compressed message inflated, piece by piece, to at most ``limit`` bytes.

    Each call asks zlib for at most one byte past what is left, so a message that
    would inflate past the bound raises :class:`MessageTooBig` having produced no more
    than ``limit + 1`` bytes in all, however small its compressed form (CPython's zlib
    briefly holds that output twice while it joins its buffers). Corrupt data raises
    :class:`zlib.error`.
    """

    __slots__ = ("_left", "_zlib")

    def __init__(self, limit: int) -> None:
        self._zlib = zlib.decompressobj(-_INFLATE_WINDOW_BITS)
        self._left = limit

    def feed(self, data: bytes) -> bytes:
        out = self._zlib.decompress(data, self._left + 1)
        if len(out) > self._left:
            raise MessageTooBig
        self._left -= len(out)
        return out

    def finish(self) -> bytes:
        """The rest of the message, after the ``00 00 ff ff`` the sender removed."""
        return self.feed(_TRAILER)
