"""permessage-deflate: negotiation, frames shared across clients, bounded inflation.

Clients here are wsproto connections that negotiated ``PerMessageDeflate`` themselves,
so every compressed frame the hub builds is judged by an independent implementation."""

from __future__ import annotations

import json
import os
import tracemalloc
import zlib

import h11
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Event, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from hub.wire import handshake
from hub.wire.deflate import (
    Agreement,
    DeflateParams,
    Inflater,
    MessageTooBig,
    compressed_text_frame,
    deflate_message,
    negotiate,
)
from hub.wire.frames import text_frame
from hub.wire.inbound import Failed, Inbound, Parser, PingIn, Text
from tests.helpers.frames import client_frame, raw_deflate

FLAGS = "server_no_context_takeover; client_no_context_takeover"


ALWAYS = DeflateParams(min_size=0)


def transaction(i: int = 0) -> bytes:
    """A stream message shaped like the simulator's (repetitive JSON, ~2.5 kB)."""
    meta = {"AffectedNodes": [{"ModifiedNode": {"LedgerEntryType": "AccountRoot"}}] * 12}
    body = {"type": "transaction", "ledger_index": 90000000 + i, "meta": meta, "n": i}
    return json.dumps(body).encode()


class Pair:
    """A wsproto client and the hub's own server side (handshake and frame reader) that
    negotiated deflate."""

    def __init__(
        self,
        offer: PerMessageDeflate | None = None,
        policy: DeflateParams | None = None,
        limit: int = 1_000_000,
    ) -> None:
        self.client = WSConnection(ConnectionType.CLIENT)
        self.offer = offer or PerMessageDeflate()
        server = h11.Connection(h11.SERVER)
        server.receive_data(
            self.client.send(Request(host="hub", target="/", extensions=[self.offer]))
        )
        request = server.next_event()
        assert isinstance(request, h11.Request)
        upgrade = handshake.check(request)
        assert isinstance(upgrade, handshake.Upgrade)
        agreement = negotiate(upgrade.offers, policy)
        assert agreement is not None
        self.agreement = agreement
        self.reader = Parser(limit, deflate=True)
        self.client.receive_data(handshake.accept(upgrade, agreement.header))
        accepted = next(self.client.events())
        assert isinstance(accepted, AcceptConnection)
        assert accepted.extensions == [self.offer]

    def to_client(self, data: bytes) -> bytes:
        self.client.receive_data(data)
        return _text(list(self.client.events()))

    def to_server(self, data: bytes) -> list[Inbound]:
        return self.reader.feed(data)


def _text(events: list[Event]) -> bytes:
    assert all(isinstance(event, TextMessage) for event in events), events
    assert events
    assert events[-1].message_finished  # type: ignore[attr-defined]
    return "".join(event.data for event in events).encode()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",  # browsers, Node's ws (xrpl.js)
        "permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate;client_max_window_bits=10",
        'permessage-deflate; client_max_window_bits="12"',
        "permessage-deflate;",
    ],
)
def test_accepted_offers_always_get_both_no_context_takeover(offer: str) -> None:
    agreement = negotiate([offer])
    assert agreement is not None
    assert agreement.response.startswith(FLAGS)
    assert "client_max_window_bits" not in agreement.response
    assert agreement.header == f"permessage-deflate; {agreement.response}"


def test_no_offer_or_other_extensions_negotiate_nothing() -> None:
    assert negotiate([]) is None
    assert negotiate(["x-webkit-deflate-frame", "permessage-bzip2"]) is None
    assert negotiate(["Permessage-Deflate"]) is None  # wsproto matches the name exactly


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; foo",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover=1",
        'permessage-deflate; client_no_context_takeover=""',
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
        'permessage-deflate; client_max_window_bits="1 0"',
        'permessage-deflate; client_max_window_bits="10',
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; =10",
        "permessage-deflate; server_max_window_bits=8",  # valid, but zlib cannot deflate so
    ],
)
def test_invalid_or_unsupported_offers_are_declined(offer: str) -> None:
    assert negotiate([offer]) is None


def test_first_acceptable_offer_wins() -> None:
    header = (
        "permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate; bogus, "
        "permessage-deflate; server_max_window_bits=11, "
        "permessage-deflate"
    )
    agreement = negotiate([header])
    assert agreement is not None
    assert agreement.params.window_bits == 11
    assert agreement.response == f"{FLAGS}; server_max_window_bits=11"
    # The same offers as wsproto hands them over, already split at the commas.
    assert negotiate(header.split(",")) == agreement


def test_server_window_bits_follow_offer_and_policy() -> None:
    policy = DeflateParams(window_bits=12)
    offered_15 = negotiate(["permessage-deflate; server_max_window_bits=15"], policy)
    assert offered_15 is not None
    assert offered_15.params.window_bits == 12
    assert offered_15.response.endswith("server_max_window_bits=12")
    offered_10 = negotiate(["permessage-deflate; server_max_window_bits=10"], policy)
    assert offered_10 is not None
    assert offered_10.params.window_bits == 10
    unoffered = negotiate(["permessage-deflate"], policy)
    assert unoffered is not None
    assert unoffered.response == f"{FLAGS}; server_max_window_bits=12"  # §7.1.2.1 allows it
    default = negotiate(["permessage-deflate; client_max_window_bits"])
    assert default is not None
    assert default.response == FLAGS


def test_agreements_are_hashable_cache_keys() -> None:
    a = negotiate(["permessage-deflate; client_max_window_bits"])
    b = negotiate(["permessage-deflate; client_max_window_bits=9; client_no_context_takeover"])
    c = negotiate(["permessage-deflate; server_max_window_bits=10"])
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.params == b.params
    assert len({(2, a.params), (2, b.params), (2, c.params), (1, a.params)}) == 3
    assert isinstance(hash(a), int)
    with pytest.raises(AttributeError):
        a.params.window_bits = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs", [{"window_bits": 8}, {"window_bits": 16}, {"level": 10}, {"min_size": -1}]
)
def test_params_refuse_what_zlib_cannot_do(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeflateParams(**kwargs)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(kwargs, DeflateParams)


@given(st.lists(st.text(max_size=80), max_size=4))
def test_any_header_text_negotiates_without_raising(offers: list[str]) -> None:
    agreement = negotiate(offers)
    assert agreement is None or agreement.response.startswith(FLAGS)


def test_compressed_frame_is_rsv1_text_and_inflates_back() -> None:
    payload = transaction()
    frame = compressed_text_frame(payload, ALWAYS)
    assert frame[0] == 0xC1  # FIN | RSV1 | text
    assert frame[1] & 0x80 == 0  # unmasked
    body = frame[4:] if frame[1] == 126 else frame[2:]
    assert len(body) == int.from_bytes(frame[2:4]) if frame[1] == 126 else frame[1]
    assert not body.endswith(b"\x00\x00\xff\xff")
    assert zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff") == payload
    assert len(frame) < len(payload) / 2


def test_small_or_incompressible_messages_go_plain() -> None:
    params = DeflateParams(min_size=100)
    small = b'{"result":{},"status":"success","type":"response"}'
    assert compressed_text_frame(small, params) == text_frame(small)
    noise = os.urandom(4000)
    assert compressed_text_frame(noise, params) == text_frame(noise)
    assert compressed_text_frame(b"a" * 100, params)[0] == 0xC1


def test_same_message_same_bytes_no_context_between_messages() -> None:
    """The bytes depend only on (message, params): any connection can be sent them."""
    first = compressed_text_frame(transaction(1), ALWAYS)
    compressed_text_frame(transaction(2), ALWAYS)
    assert compressed_text_frame(transaction(1), ALWAYS) == first
    # And each frame inflates on its own, with a fresh decompressor.
    body = deflate_message(transaction(2), ALWAYS)
    assert zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff") == transaction(2)


def test_empty_message_compresses_to_the_single_zero_byte() -> None:
    assert deflate_message(b"", ALWAYS) == b"\x00"  # RFC 7692 §7.2.3.6


def _inflate_through_window(body: bytes, bits: int) -> bytes:
    """Inflate 256 bytes at a time, so matches must come from the ``bits`` window
    (zlib otherwise also copies from the output buffer of the same call)."""
    inflater = zlib.decompressobj(-bits)
    out, data = b"", body + b"\x00\x00\xff\xff"
    while data:
        out += inflater.decompress(data, 256)
        data = inflater.unconsumed_tail
    return out


def test_window_bits_bound_match_distances() -> None:
    """Output at 10 bits inflates with a 1 KiB window; at 15 bits it needs more."""
    chunk = os.urandom(1500).hex().encode()
    payload = chunk + chunk
    small = deflate_message(payload, DeflateParams(window_bits=10))
    assert _inflate_through_window(small, 10) == payload
    large = deflate_message(payload, DeflateParams(window_bits=15))
    assert _inflate_through_window(large, 15) == payload
    with pytest.raises(zlib.error, match="too far back"):
        _inflate_through_window(large, 10)


@pytest.mark.parametrize("size", [300, 65535, 70000, 1_000_000])
def test_wsproto_client_decodes_shared_frames(size: int) -> None:
    payload = (transaction() * (size // len(transaction()) + 1))[:size]
    frame = compressed_text_frame(payload, ALWAYS)
    assert frame[0] == 0xC1
    # One frame built once, decoded by two independent clients, twice each.
    for pair in (Pair(), Pair()):
        assert pair.to_client(frame) == payload
        assert pair.to_client(frame) == payload


def test_wsproto_client_decodes_at_a_narrow_window() -> None:
    pair = Pair(PerMessageDeflate(server_max_window_bits=9))
    assert pair.agreement.params.window_bits == 9
    chunk = os.urandom(700).hex().encode()
    payload = chunk * 3
    assert pair.to_client(compressed_text_frame(payload, pair.agreement.params)) == payload


def test_wsproto_client_mixes_plain_and_compressed_frames() -> None:
    pair = Pair(policy=DeflateParams(min_size=50))
    params = pair.agreement.params
    messages = [b'{"a":1}', transaction(3), b'{"b":2}', transaction(4)]
    for message in messages:
        assert pair.to_client(compressed_text_frame(message, params)) == message


def test_server_inflates_client_messages_and_keeps_no_zlib_state() -> None:
    pair = Pair()
    for i in range(3):
        message = transaction(i).decode()
        assert pair.to_server(pair.client.send(TextMessage(data=message))) == [
            Text(message.encode())
        ]
        assert not pair.reader.inflating


def test_fragmented_compressed_message_with_a_ping_between_fragments() -> None:
    pair = Pair()
    payload = transaction(5)
    body = raw_deflate(payload)
    cut = len(body) // 2
    data = client_frame(0x1, body[:cut], fin=False, rsv1=True)
    data += client_frame(0x9, b"still here")
    data += client_frame(0x0, body[cut:])
    events = pair.to_server(data)
    assert events == [PingIn(b"still here"), Text(payload)]
    assert not pair.reader.inflating


def test_bytewise_delivery_inflates_the_same() -> None:
    pair = Pair()
    payload = transaction(6)
    data = client_frame(0x1, raw_deflate(payload), rsv1=True)
    events: list[Inbound] = []
    for i in range(len(data)):
        events += pair.to_server(data[i : i + 1])
    assert events == [Text(payload)]


def test_uncompressed_client_messages_pass_through() -> None:
    pair = Pair()
    events = pair.to_server(client_frame(0x1, b'{"command":"ping"}'))
    assert events == [Text(b'{"command":"ping"}')]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (client_frame(0x9, raw_deflate(b"x"), rsv1=True), 1002),  # RSV1 on a control frame
        (
            client_frame(0x1, raw_deflate(b"ab"), fin=False, rsv1=True)
            + client_frame(0x0, b"", rsv1=True),
            1002,
        ),  # RSV1 on a continuation frame
        (client_frame(0x1, b"\xff\xff\xff\xff garbage", rsv1=True), 1007),
        (client_frame(0x1, raw_deflate(b"\xff\xfe not utf-8"), rsv1=True), 1007),
    ],
)
def test_protocol_errors_close_with_the_right_code(data: bytes, code: int) -> None:
    pair = Pair()
    events = pair.to_server(data)
    assert isinstance(events[-1], Failed)
    assert events[-1].code == code
    assert not events[-1].too_big


def test_message_inflating_past_the_bound_closes_1009() -> None:
    limit = 10_000
    pair = Pair(limit=limit)
    exact = b"a" * limit
    assert pair.to_server(client_frame(0x1, raw_deflate(exact), rsv1=True)) == [Text(exact)]
    events = pair.to_server(client_frame(0x1, raw_deflate(exact + b"a"), rsv1=True))
    assert isinstance(events[-1], Failed)
    assert events[-1].code == 1009
    assert events[-1].too_big
    assert not pair.reader.inflating


def test_bound_counts_across_fragments() -> None:
    limit = 10_000
    pair = Pair(limit=limit)
    body = raw_deflate(b"b" * (limit + 1))
    data = client_frame(0x1, body[:5], fin=False, rsv1=True) + client_frame(0x0, body[5:])
    events = pair.to_server(data)
    assert events == [Failed(1009, f"message exceeds {limit} bytes", too_big=True)]


def _bomb(size: int) -> bytes:
    """``size`` zero bytes deflated, built without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    out = b"".join(compressor.compress(block) for _ in range(size >> 20))
    return (out + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_a_deflate_bomb_allocates_no_more_than_the_bound() -> None:
    limit = 1 << 20
    bomb = _bomb(64 << 20)
    assert len(bomb) < 100_000
    pair = Pair(limit=limit)
    frame = client_frame(0x1, bomb, rsv1=True)
    tracemalloc.start()
    try:
        events = pair.to_server(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(events[-1], Failed)
    assert events[-1].code == 1009
    # zlib's output (at most limit + 1 bytes) is briefly held twice while Python joins
    # its buffers; nothing near the 64 MiB the bomb would inflate to.
    assert peak < 3 * limit, f"peak {peak} bytes while inflating a 64 MiB bomb"


def test_inflater_stops_one_byte_past_the_bound() -> None:
    inflater = Inflater(1000)
    with pytest.raises(MessageTooBig):
        inflater.feed(raw_deflate(bytes(50_000)))
    ok = Inflater(1000)
    assert ok.feed(raw_deflate(bytes(1000))) + ok.finish() == bytes(1000)
    late = Inflater(999)
    body = raw_deflate(bytes(1000))
    with pytest.raises(MessageTooBig):
        late.feed(body + b"\x00\x00\xff\xff")


@given(st.binary(max_size=3000), st.integers(1, 15).filter(lambda bits: bits >= 9))
def test_inflater_inverts_any_client_window(payload: bytes, bits: int) -> None:
    inflater = Inflater(len(payload))
    body = raw_deflate(payload, bits)
    assert inflater.feed(body) + inflater.finish() == payload


def test_agreement_struct_roundtrips() -> None:
    agreement = negotiate(["permessage-deflate"])
    assert agreement is not None
    again = msgspec.json.decode(msgspec.json.encode(agreement), type=Agreement)
    assert again == agreement
