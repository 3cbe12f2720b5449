"""The server side of the WebSocket opening handshake (RFC 6455 §4.2) as plain functions.

"The WebSocket Protocol", https://www.rfc-editor.org/rfc/rfc6455#section-4.2

The request head is parsed once, by h11 in :mod:`hub.edge.httpd`; :func:`check` reads the
upgrade out of it and :func:`accept` renders the 101. wsproto's ``WSConnection`` would
parse the head a second time and keep its h11 connection for the life of the
WebSocket; after the handshake a connection needs only :mod:`hub.wire.inbound`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import h11

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION: Final = b"13"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A valid upgrade request: its key and the extensions it offers."""

    key: bytes
    offers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: an HTTP status and a one-line reason."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


def check(request: h11.Request) -> Upgrade | Refusal:
    """The upgrade a request asks for, or why it is not one the hub can accept."""
    values: dict[bytes, list[bytes]] = {}
    for name, value in request.headers:
        values.setdefault(name, []).append(value)
    if request.method != b"GET" or request.http_version != b"1.1":
        return Refusal(400, "A WebSocket upgrade is an HTTP/1.1 GET request.")
    if b"upgrade" not in _tokens(values.get(b"connection")):
        return Refusal(400, "Missing header: 'Connection: Upgrade'.")
    if b"websocket" not in _tokens(values.get(b"upgrade")):
        return Refusal(400, "Missing header: 'Upgrade: websocket'.")
    if values.get(b"sec-websocket-version") != [VERSION]:
        return Refusal(
            426, "Only WebSocket version 13 is supported.", ((b"sec-websocket-version", VERSION),)
        )
    keys = values.get(b"sec-websocket-key", [])
    if len(keys) != 1 or not _valid_key(keys[0]):
        return Refusal(400, "Sec-WebSocket-Key must be 16 bytes in base64.")
    offers = tuple(
        offer.strip()
        for value in values.get(b"sec-websocket-extensions", [])
        for offer in value.decode("latin-1").split(",")
        if offer.strip()
    )
    return Upgrade(keys[0], offers)


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a client's key (§4.2.2 step 5.4)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def accept(upgrade: Upgrade, extensions: str | None = None) -> bytes:
    """The 101 response that opens the WebSocket, with the agreed extensions if any."""
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"upgrade: websocket",
        b"connection: Upgrade",
        b"sec-websocket-accept: " + accept_key(upgrade.key),
    ]
    if extensions:
        lines.append(b"sec-websocket-extensions: " + extensions.encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def refuse(refusal: Refusal) -> bytes:
    """A plain HTTP error that ends the connection, its body the reason in one line."""
    body = f"{refusal.reason}\n".encode()
    phrase = HTTPStatus(refusal.status).phrase.encode()
    head = [
        b"HTTP/1.1 %d %s" % (refusal.status, phrase),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
        *(name + b": " + value for name, value in refusal.headers),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _tokens(values: list[bytes] | None) -> set[bytes]:
    return {token.strip().lower() for value in values or () for token in value.split(b",")}


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False
