"""Routing and delivery without sockets: who gets what, how often, in which shape."""

from __future__ import annotations

from typing import Any

import msgspec
from wsproto.frame_protocol import FrameProtocol

from hub.core import fanout
from hub.core.feed import Feed, Feeds
from hub.core.outbox import Outbox
from hub.core.session import Session, Sink
from hub.core.subscriptions import Subscriptions, parse_change
from hub.xrpl import events
from tests.helpers.samples import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    GATEWAY,
    account,
    iou_payment,
    ledger_closed,
    offer_crossing,
    proposed,
    validation,
    xrp_payment,
)


class Queue:
    """A sink that keeps what it is sent, as a connection's outbox would."""

    streams = True
    in_flight = 0

    def __init__(self) -> None:
        self.outbox = Outbox(1 << 20, 1000)

    @property
    def queued_messages(self) -> int:
        return len(self.outbox)

    @property
    def queued_bytes(self) -> int:
        return self.outbox.nbytes

    @property
    def cursor(self) -> int:
        return self.outbox.cursor

    def follow(self, feed: Feed | None) -> None:
        self.outbox.follow(feed)

    def flush(self) -> None:
        pass

    def send(self, frame: bytes, stamp: float | None) -> None:
        assert self.outbox.push(frame, stamp)

    def take(self) -> bytes:
        return b"".join(self.outbox.take_frames())


def session(version: int = 1) -> Session:
    return Session(remote="test", admin=False, sink=Queue(), stream_version=version)


def taken(s: Session) -> bytes:
    assert isinstance(s.sink, Queue)
    return s.sink.take()


def received_bytes(data: bytes) -> list[Any]:
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(data)
    return [msgspec.json.decode(frame.payload) for frame in proto.received_frames()]


def received(s: Session) -> list[Any]:
    return received_bytes(taken(s))


class Index(Subscriptions[Session]):
    """The subscriptions and the feeds their stream subscribers read, as a node has."""

    def __init__(self) -> None:
        super().__init__()
        self.feeds = Feeds()
        self.touched: set[Sink] = set()


def sub(subs: Index, s: Session, **params: Any) -> None:
    subs.subscribe(s, parse_change(params, admin=True))
    fanout.place(subs.feeds, s, subs.own(s).streams)


def deliver(event: events.Event, subs: Index) -> int:
    return fanout.deliver(event, subs, subs.feeds, subs.touched)


def test_streams_route_by_type() -> None:
    subs = Index()
    ledger, vals, txs = session(), session(), session()
    sub(subs, ledger, streams=["ledger"])
    sub(subs, vals, streams=["validations"])
    sub(subs, txs, streams=["transactions"])
    for message in (ledger_closed(5), validation(5), xrp_payment(5, 1)):
        deliver(events.parse(message), subs)
    assert [m["type"] for m in received(ledger)] == ["ledgerClosed"]
    assert [m["type"] for m in received(vals)] == ["validationReceived"]
    assert [m["type"] for m in received(txs)] == ["transaction"]


def test_account_filter_uses_affected_accounts() -> None:
    subs = Index()
    issuer, bystander, maker = session(2), session(2), session(2)
    sub(subs, issuer, accounts=[GATEWAY])
    sub(subs, bystander, accounts=[account(42)])
    sub(subs, maker, accounts=[DAN])
    deliver(events.parse(iou_payment(5, 1, ALICE, BOB)), subs)
    deliver(events.parse(offer_crossing(5, 2, CAROL, DAN)), subs)
    assert [m["hash"] for m in received(issuer)] == [
        iou_payment(5, 1)["hash"],
        offer_crossing(5, 2)["hash"],
    ]
    assert received(bystander) == []
    assert [m["tx_json"]["TransactionType"] for m in received(maker)] == ["OfferCreate"]


def test_stream_subscribers_alone_never_have_an_events_routes_worked_out() -> None:
    subs = Index()
    sub(subs, session(), streams=["transactions", "transactions_proposed"])
    validated = events.parse(iou_payment(5, 1, ALICE, BOB))
    pending = events.parse(proposed(iou_payment(5, 2, ALICE, BOB)))
    assert deliver(validated, subs) == 2
    assert deliver(pending, subs) == 1
    assert validated.known_routes is None
    assert pending.known_routes is None
    sub(subs, session(), accounts=[ALICE])
    assert deliver(validated, subs) == 3
    assert validated.known_routes is not None


def test_balance_issuer_is_not_an_affected_account() -> None:
    subs = Index()
    neutral = session()
    sub(subs, neutral, accounts=[account(99)])
    deliver(events.parse(iou_payment(5, 1)), subs)
    assert received(neutral) == []


def test_once_per_kind_of_subscription() -> None:
    subs = Index()
    s = session(2)
    sub(
        subs,
        s,
        streams=["transactions"],
        accounts=[ALICE, BOB],
        accounts_proposed=[ALICE],
        books=[
            {
                "taker_gets": {"currency": "USD", "issuer": GATEWAY},
                "taker_pays": {"currency": "XRP"},
                "both": True,
            }
        ],
    )
    deliver(events.parse(xrp_payment(5, 1, ALICE, BOB)), subs)
    assert len(received(s)) == 2
    deliver(events.parse(offer_crossing(5, 2, ALICE, DAN)), subs)
    assert len(received(s)) == 3


def test_validated_transaction_also_reaches_proposed_stream() -> None:
    subs = Index()
    both, only_proposed = session(), session()
    sub(subs, both, streams=["transactions", "transactions_proposed"])
    sub(subs, only_proposed, streams=["transactions_proposed"])
    deliver(events.parse(xrp_payment(5, 1)), subs)
    assert len(received(both)) == 2
    assert len(received(only_proposed)) == 1


def test_proposed_transaction_reaches_only_proposed_subscribers() -> None:
    subs = Index()
    validated, rt, rt_account, account_sub = session(), session(), session(), session()
    sub(subs, validated, streams=["transactions"])
    sub(subs, rt, streams=["transactions_proposed"])
    sub(subs, rt_account, accounts_proposed=[BOB])
    sub(subs, account_sub, accounts=[BOB])
    deliver(events.parse(proposed(xrp_payment(5, 1, ALICE, BOB))), subs)
    assert received(validated) == []
    assert received(account_sub) == []
    assert received(rt)[0]["validated"] is False
    assert len(received(rt_account)) == 1


def test_books_both_directions() -> None:
    """rippled's direction (Book_test.cpp): the crossing consumes an offer whose
    TakerGets is USD and TakerPays XRP, so it reaches the subscriber with taker_gets XRP
    and taker_pays USD, not the one the other way round, and ``both`` either way."""
    subs = Index()
    usd = {"currency": "USD", "issuer": GATEWAY}
    xrp = {"currency": "XRP"}
    gets_usd, gets_xrp, both, reverse_both = session(), session(), session(), session()
    sub(subs, gets_usd, books=[{"taker_gets": usd, "taker_pays": xrp}])
    sub(subs, gets_xrp, books=[{"taker_gets": xrp, "taker_pays": usd}])
    sub(subs, both, books=[{"taker_gets": xrp, "taker_pays": usd, "both": True}])
    sub(subs, reverse_both, books=[{"taker_gets": usd, "taker_pays": xrp, "both": True}])
    deliver(events.parse(offer_crossing(5, 2)), subs)
    assert received(gets_usd) == []
    assert len(received(gets_xrp)) == 1
    assert len(received(both)) == 1
    assert len(received(reverse_both)) == 1


def test_failed_offer_transactions_reach_no_book() -> None:
    """rippled routes only tesSUCCESS transactions to books (pubValidatedTransaction)."""
    subs = Index()
    watcher = session()
    sub(
        subs,
        watcher,
        books=[
            {
                "taker_gets": {"currency": "XRP"},
                "taker_pays": {"currency": "USD", "issuer": GATEWAY},
            }
        ],
    )
    failed = offer_crossing(5, 2)
    failed["meta"]["TransactionResult"] = "tecKILLED"
    failed["engine_result"] = "tecKILLED"
    deliver(events.parse(failed), subs)
    assert received(watcher) == []


def test_each_subscriber_gets_its_version_and_bytes_are_shared() -> None:
    subs = Index()
    v1a, v1b, v2 = session(1), session(1), session(2)
    for s in (v1a, v1b, v2):
        sub(subs, s, streams=["transactions"])
    assert deliver(events.parse(xrp_payment(5, 1)), subs) == 3
    a, b = taken(v1a), taken(v1b)
    assert a == b
    (m1,) = received_bytes(a)
    (m2,) = received(v2)
    assert "transaction" in m1
    assert "tx_json" in m2
