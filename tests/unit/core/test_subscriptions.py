"""Subscribe/unsubscribe parsing (all-or-nothing), the subscription index, and a long
parse paced in chunks so that everyone else runs between them."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hub.config import load
from hub.core.node import Identity, Node
from hub.core.subscriptions import (
    CHUNK,
    Change,
    Subscriptions,
    change_steps,
    drive,
    parse_change,
    wants_snapshot,
)
from hub.wire.errors import RPCError
from tests.helpers.samples import ALICE, BOB, GATEWAY, USD, account


async def test_a_long_parse_lets_everyone_else_run_between_chunks() -> None:
    """Driven by the node as a request would be: between two chunks every other task
    gets a turn, so one client's long request never holds the hub for more than a chunk."""
    node = Node(load(None, {"source": {"source": "none"}}))
    session = node.open_session(Identity("10.0.0.1", False), _NoSink())
    accounts = [account(i) for i in range(6 * CHUNK)]
    turns = 0
    done = False

    async def neighbour() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(neighbour)
        outcome = await node.execute(session, {"command": "subscribe", "accounts": accounts})
        done = True
    assert outcome.error is None
    assert turns >= 6


def test_the_parse_yields_each_piece_of_work_before_doing_it() -> None:
    spent: list[tuple[str, int]] = []
    params = {
        "streams": ["ledger"],
        "accounts": [account(i) for i in range(CHUNK + 1)],
        "books": [{"taker_pays": {"currency": "XRP"}, "taker_gets": USD, "both": True}],
    }
    change = drive(change_steps(params, admin=False), lambda kind, n: spent.append((kind, n)))
    assert len(change.accounts) == CHUNK + 1
    assert spent == [("stream", 1), ("account", CHUNK), ("account", 1), ("book", 1), ("book", 1)]


class _NoSink:
    streams = True
    queued_messages = queued_bytes = in_flight = cursor = 0

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        pass

    def follow(self, feed: object) -> None:
        pass

    def flush(self) -> None:
        pass


XRP = {"currency": "XRP"}


DOMAIN = "AB" * 32


def change(params: dict[str, Any], admin: bool = False) -> Change:
    return parse_change(params, admin=admin)


def error_of(params: dict[str, Any], admin: bool = False) -> str:
    with pytest.raises(RPCError) as info:
        change(params, admin)
    return info.value.token


def book(**fields: Any) -> dict[str, Any]:
    return {"books": [{"taker_gets": XRP, "taker_pays": USD, **fields}]}


def test_parses_every_kind() -> None:
    got = change(
        {
            "streams": ["ledger", "rt_transactions"],
            "accounts": [ALICE],
            "accounts_proposed": [BOB],
            "books": [{"taker_gets": XRP, "taker_pays": USD, "both": True}],
        }
    )
    assert got.streams == {"ledger", "transactions_proposed"}
    assert got.accounts == {ALICE}
    assert got.accounts_proposed == {BOB}
    assert got.books[0].both
    assert got.size == 5


@pytest.mark.parametrize(
    ("params", "token"),
    [
        ({"streams": "ledger"}, "invalidParams"),
        ({"streams": ["ledger", "bogus"]}, "malformedStream"),
        ({"streams": [1]}, "malformedStream"),
        ({"accounts": ALICE}, "invalidParams"),
        ({"accounts": []}, "actMalformed"),
        ({"accounts": [ALICE, "rNotAnAddress"]}, "actMalformed"),
        ({"accounts": [ALICE[:-1] + ("a" if ALICE[-1] != "a" else "b")]}, "actMalformed"),
        ({"accounts_proposed": [42]}, "actMalformed"),
        ({"books": {}}, "invalidParams"),
        ({"books": ["XRP"]}, "invalidParams"),
        # rippled's doSubscribe: a missing side or one that is neither object nor null
        # is invalidParams, before any currency is looked at.
        ({"books": [{"taker_gets": XRP}]}, "invalidParams"),
        ({"books": [{"taker_pays": USD}]}, "invalidParams"),
        ({"books": [{"taker_gets": "XRP", "taker_pays": {"currency": "??"}}]}, "invalidParams"),
        ({"books": [{"taker_gets": XRP, "taker_pays": None}]}, "srcCurMalformed"),
        ({"books": [{"taker_gets": None, "taker_pays": USD}]}, "dstAmtMalformed"),
        ({"books": [{"taker_gets": XRP, "taker_pays": XRP}]}, "badMarket"),
        # taker is checked after the market, and is badIssuer whatever is wrong with it.
        (book(taker="rNotAnAddress"), "badIssuer"),
        (book(taker=5), "badIssuer"),
        ({"books": [{"taker_gets": XRP, "taker_pays": XRP, "taker": "x"}]}, "badMarket"),
        (book(domain="nothex"), "domainMalformed"),
        (book(domain=DOMAIN[:-2]), "domainMalformed"),
        (book(taker="x", domain="nothex"), "badIssuer"),
        (book(both="yes"), "invalidParams"),
        (book(snapshot=1), "invalidParams"),
        (book(state_now="yes"), "invalidParams"),
        (book(limit=0), "invalidParams"),
        (book(limit=101), "invalidParams"),
        (book(limit="10"), "invalidParams"),
        ({"streams": ["peer_status"]}, "noPermission"),
        ({"url": "http://example.invalid/"}, "noPermission"),
    ],
)
def test_invalid_requests(params: dict[str, Any], token: str) -> None:
    assert error_of(params) == token


def test_admin_may_subscribe_to_peer_status() -> None:
    assert change({"streams": ["peer_status"]}, admin=True).streams == {"peer_status"}


def test_book_entry_fields() -> None:
    (sub,) = change(book(snapshot=True, taker=ALICE, limit=5, domain=DOMAIN.lower())).books
    # The subscriber's book is rippled's: in = taker_pays, out = taker_gets.
    assert sub.book == ("USD", GATEWAY, "XRP", "", DOMAIN)
    assert (sub.snapshot, sub.both, sub.taker, sub.limit) == (True, False, ALICE, 5)
    (plain,) = change(book()).books
    assert (plain.snapshot, plain.taker, plain.limit) == (False, None, 60)
    assert plain.books() == (("USD", GATEWAY, "XRP", "", ""),)


def test_deprecated_both_sides_and_state_now() -> None:
    (sub,) = change(book(both_sides=True, state_now=True)).books
    assert sub.both
    assert sub.snapshot
    assert sub.books() == (("USD", GATEWAY, "XRP", "", ""), ("XRP", "", "USD", GATEWAY, ""))


def test_snapshots_and_wants_snapshot() -> None:
    params = {"books": [book()["books"][0], book(snapshot=True)["books"][0]]}
    assert [sub.snapshot for sub in change(params).snapshots] == [True]
    assert wants_snapshot(params)
    assert wants_snapshot(book(state_now=True))
    assert not wants_snapshot(book())
    assert not wants_snapshot({"books": "x"})
    assert not wants_snapshot({"streams": ["ledger"]})


def test_index_subscribe_unsubscribe_is_exact_inverse() -> None:
    subs: Subscriptions[str] = Subscriptions()
    every = change(
        {
            "streams": ["ledger", "book_changes", "transactions"],
            "accounts": [ALICE],
            "accounts_proposed": [BOB],
            "books": [{"taker_gets": XRP, "taker_pays": USD, "both": True}],
        }
    )
    subs.subscribe("a", every)
    subs.subscribe("a", every)
    assert subs.streams["book_changes"] == {"a"}
    assert subs.accounts[ALICE] == {"a"}
    assert len(subs.books) == 2
    subs.unsubscribe("a", every)
    assert all(not s for s in subs.streams.values())
    assert subs.accounts == {}
    assert subs.accounts_proposed == {}
    assert subs.books == {}
    assert subs.own("a").size == 0
    subs.unsubscribe("a", every)


def test_drop_forgets_one_subscriber_only() -> None:
    subs: Subscriptions[str] = Subscriptions()
    both = change({"streams": ["ledger"], "accounts": [ALICE]})
    subs.subscribe("a", both)
    subs.subscribe("b", both)
    subs.drop("a")
    assert subs.streams["ledger"] == {"b"}
    assert subs.accounts[ALICE] == {"b"}
    assert subs.counts()["ledger"] == 1
    assert subs.counts()["accounts"] == 1
