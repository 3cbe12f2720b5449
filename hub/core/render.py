"""An event rendered once per API version, as the WebSocket frame every subscriber gets.

v1 differs from v2 where rippled's ``transJson`` and ``pubValidation`` differ: the
transaction sits under ``transaction`` with ``hash`` inside it instead of ``tx_json``
plus a top-level ``hash``; v1 Payments carry ``Amount`` beside ``DeliverMax``; and
``validationReceived.ledger_index`` is a string. Version 3 renders as version 2.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hub.wire.deflate import DeflateParams, compressed_text_frame
from hub.wire.envelope import encode
from hub.wire.frames import frame_payload, text_frame
from hub.xrpl.events import Event

decode_json = msgspec.json.Decoder(dict[str, Any]).decode


def render_version(api_version: int) -> int:
    """The rendering a client at ``api_version`` gets: 1, or 2 for every later version."""
    return 1 if api_version <= 1 else 2


def body_for(event: Event, api_version: int) -> dict[str, Any]:
    """The message object a subscriber at ``api_version`` receives."""
    body = event.body
    if render_version(api_version) == 2:
        return body
    if event.kind == "transaction":
        return _transaction_v1(body)
    if event.kind == "validationReceived" and isinstance(body.get("ledger_index"), int):
        return {**body, "ledger_index": str(body["ledger_index"])}
    return body


def payload(event: Event, api_version: int) -> bytes:
    return encode(body_for(event, api_version))


class Renderings:
    """The frames of one event, built on first use for each rendering (API version and
    permessage-deflate parameters) and then shared by every subscriber that gets it."""

    __slots__ = ("_event", "_frames", "_kind")

    def __init__(self, event: Event) -> None:
        self._event: Event | None = event
        self._kind = event.kind
        self._frames: dict[tuple[int, DeflateParams | None], bytes] = {}

    def __call__(self, api_version: int, deflate: DeflateParams | None = None) -> bytes:
        key = (render_version(api_version), deflate)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._build(*key)
            if self._event is not None:
                self._frames[key] = frame
        return frame

    def _build(self, version: int, deflate: DeflateParams | None) -> bytes:
        plain = self._frames.get((version, None))
        if plain is not None:
            data = frame_payload(plain)
        else:
            data = payload(self._event or self._thaw(), version)
        return text_frame(data) if deflate is None else compressed_text_frame(data, deflate)

    def freeze(self) -> None:
        """Keep only the plain v2 frame and let go of the event, for long-lived copies;
        other renderings are built again whenever asked for, and not kept.

        A v1 frame is rendered from the v2 frame's own JSON, which decodes to the same
        message in the same key order, so it is byte-identical to the v1 frame live
        subscribers got; compressed frames depend only on the payload and parameters.
        """
        self._frames = {(2, None): self(2)}
        self._event = None

    def message(self) -> dict[str, Any]:
        """The event's v2 message, decoded again from the kept frame once frozen."""
        return (self._event or self._thaw()).body

    def _thaw(self) -> Event:
        return Event(self._kind, decode_json(frame_payload(self._frames[(2, None)])))

    @property
    def nbytes(self) -> int:
        return sum(len(frame) for frame in self._frames.values())


def _transaction_v1(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "tx_json":
            tx = dict(value)
            if tx.get("TransactionType") == "Payment" and "DeliverMax" in tx:
                tx["Amount"] = tx["DeliverMax"]
            if "hash" in body:
                tx["hash"] = body["hash"]
            out["transaction"] = tx
        elif key != "hash":
            out[key] = value
    return out
