"""Subscribe/unsubscribe parsing (all-or-nothing) and the subscription index."""

from __future__ import annotations

from typing import Any

import pytest

from hub.errors import RPCError
from hub.subscriptions import Change, Subscriptions, parse_change
from tests.samples import ALICE, BOB, GATEWAY

USD = {"currency": "USD", "issuer": GATEWAY}
XRP = {"currency": "XRP"}


def change(params: dict[str, Any], admin: bool = False, subscribe: bool = True) -> Change:
    return parse_change(params, admin=admin, subscribe=subscribe)


def error_of(params: dict[str, Any], admin: bool = False, subscribe: bool = True) -> str:
    with pytest.raises(RPCError) as info:
        change(params, admin, subscribe)
    return info.value.token


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
        ({"books": [{"taker_gets": XRP}]}, "srcCurMalformed"),
        ({"books": [{"taker_gets": XRP, "taker_pays": XRP}]}, "badMarket"),
        ({"books": [{"taker_gets": XRP, "taker_pays": USD, "both": "yes"}]}, "invalidParams"),
        ({"books": [{"taker_gets": XRP, "taker_pays": USD, "snapshot": True}]}, "notSupported"),
        ({"streams": ["peer_status"]}, "noPermission"),
        ({"url": "http://example.invalid/"}, "noPermission"),
    ],
)
def test_invalid_requests(params: dict[str, Any], token: str) -> None:
    assert error_of(params) == token


def test_admin_may_subscribe_to_peer_status() -> None:
    assert change({"streams": ["peer_status"]}, admin=True).streams == {"peer_status"}


def test_snapshot_is_fine_on_unsubscribe() -> None:
    book = {"taker_gets": XRP, "taker_pays": USD, "snapshot": True}
    assert len(change({"books": [book]}, subscribe=False).books) == 1


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
