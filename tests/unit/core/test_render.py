"""Per-version rendering: rippled's v1 and v2 shapes, one frame per rendering."""

from __future__ import annotations

import msgspec
from wsproto.frame_protocol import FrameProtocol, Opcode

from hub.core.render import Renderings, body_for, render_version
from hub.xrpl import events
from tests.helpers.samples import iou_payment, ledger_closed, validation, xrp_payment


def test_v2_is_the_message_as_published() -> None:
    message = xrp_payment(10, 1)
    assert body_for(events.parse(message), 2) == message


def test_v1_transaction_shape() -> None:
    message = xrp_payment(10, 1)
    v1 = body_for(events.parse(message), 1)
    assert "tx_json" not in v1
    assert "hash" not in v1
    assert v1["transaction"]["hash"] == message["hash"]
    assert v1["transaction"]["Amount"] == message["tx_json"]["DeliverMax"]
    assert v1["transaction"]["DeliverMax"] == message["tx_json"]["DeliverMax"]
    assert v1["meta"] == message["meta"]
    assert v1["ledger_index"] == 10


def test_v1_non_payment_gets_no_amount() -> None:
    message = {**iou_payment(10, 2)}
    message["tx_json"] = {**message["tx_json"], "TransactionType": "TrustSet"}
    v1 = body_for(events.parse(message), 1)
    assert "Amount" not in v1["transaction"]


def test_v1_validation_index_is_a_string() -> None:
    event = events.parse(validation(33))
    assert body_for(event, 1)["ledger_index"] == "33"
    assert body_for(event, 2)["ledger_index"] == 33


def test_ledger_closed_is_the_same_for_every_version() -> None:
    event = events.parse(ledger_closed(4))
    assert body_for(event, 1) == body_for(event, 2) == ledger_closed(4)


def test_version_three_renders_as_two() -> None:
    assert render_version(1) == 1
    assert render_version(2) == render_version(3) == 2


def test_frames_are_built_once_and_shared() -> None:
    frames = Renderings(events.parse(xrp_payment(3, 1)))
    assert frames(1) is frames(1)
    assert frames(2) is frames(3)
    assert frames(1) != frames(2)


def test_frame_decodes_as_a_websocket_text_message() -> None:
    message = xrp_payment(3, 1)
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(Renderings(events.parse(message))(2))
    (frame,) = list(proto.received_frames())
    assert frame.opcode is Opcode.TEXT
    assert frame.frame_finished
    assert frame.message_finished
    assert msgspec.json.decode(frame.payload) == message


def test_frozen_frames_render_v1_byte_identical() -> None:
    from hub.sources.simulator import LedgerSimulator

    for message in LedgerSimulator(seed=4, tx_per_ledger=10).close_ledger():
        live = Renderings(events.parse(message))
        kept = Renderings(events.parse(message))
        kept.freeze()
        assert kept(1) == live(1)
        assert kept(2) == live(2)
