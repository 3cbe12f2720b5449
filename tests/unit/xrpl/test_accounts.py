"""Accounts and books a transaction touches, read from its metadata as rippled does."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hub.xrpl.accounts import (
    BookSpecError,
    affected_accounts,
    affected_books,
    amount_issue,
    book_key,
    mentioned_accounts,
    normalize_currency,
    parse_domain,
    reversed_book,
)
from hub.xrpl.addresses import ACCOUNT_ONE, ACCOUNT_ZERO, encode_account_id


def _address(label: str) -> str:
    return encode_account_id(hashlib.sha256(label.encode()).digest()[:20])


ALICE, BOB, CAROL, DAVE, GATEWAY, GATEWAY2 = (
    _address(name) for name in ("alice", "bob", "carol", "dave", "gateway", "gateway2")
)


USD_HEX = "0000000000000000000000005553440000000000"


TX_HASH = "E3FE6EA3D48F0C2B639448020EA4F03D4F4F8FFDB243A852A0F59177921B4879"


PUBKEY = "03AB40A0490F9B7ED8DF29D246BF2D6269820A0EE7742ACDD457BEA7C7D0931EDB"


def _root(account: str, balance: str, prev_balance: str, seq: int | None = None) -> dict[str, Any]:
    previous: dict[str, Any] = {"Balance": prev_balance}
    if seq is not None:
        previous["Sequence"] = seq - 1
    return {
        "ModifiedNode": {
            "FinalFields": {
                "Account": account,
                "Balance": balance,
                "Flags": 0,
                "OwnerCount": 1,
                "Sequence": seq or 7,
            },
            "LedgerEntryType": "AccountRoot",
            "LedgerIndex": hashlib.sha256(account.encode()).hexdigest().upper(),
            "PreviousFields": previous,
            "PreviousTxnID": TX_HASH,
            "PreviousTxnLgrSeq": 89_999_990,
        }
    }


def _trust_line(holder: str, issuer: str, value: str, previous: str) -> dict[str, Any]:
    return {
        "ModifiedNode": {
            "FinalFields": {
                "Balance": {"currency": "USD", "issuer": ACCOUNT_ONE, "value": value},
                "Flags": 65536,
                "HighLimit": {"currency": "USD", "issuer": issuer, "value": "0"},
                "HighNode": "0",
                "LowLimit": {"currency": "USD", "issuer": holder, "value": "1000"},
                "LowNode": "0",
            },
            "LedgerEntryType": "RippleState",
            "LedgerIndex": hashlib.sha256((holder + issuer).encode()).hexdigest().upper(),
            "PreviousFields": {
                "Balance": {"currency": "USD", "issuer": ACCOUNT_ONE, "value": previous}
            },
            "PreviousTxnID": TX_HASH,
            "PreviousTxnLgrSeq": 89_999_991,
        }
    }


def _payment(destination: str, amount: Any) -> dict[str, Any]:
    return {
        "Account": ALICE,
        "DeliverMax": amount,
        "Destination": destination,
        "Fee": "12",
        "Flags": 0,
        "InvoiceID": TX_HASH,
        "LastLedgerSequence": 90_000_010,
        "Sequence": 8,
        "SigningPubKey": PUBKEY,
        "TransactionType": "Payment",
        "TxnSignature": "3044" + "AB" * 68,
        "date": 820_540_800,
    }


def test_xrp_payment_touches_sender_and_destination() -> None:
    tx = _payment(BOB, "1000000")
    meta = {
        "AffectedNodes": [
            _root(ALICE, "98999988", "99999988", seq=9),
            _root(BOB, "21000000", "20000000"),
        ],
        "TransactionIndex": 3,
        "TransactionResult": "tesSUCCESS",
        "delivered_amount": "1000000",
    }
    assert affected_accounts(tx, meta) == {ALICE, BOB}
    assert mentioned_accounts(tx) == {ALICE, BOB}


def test_iou_payment_counts_trust_line_parties_not_account_one() -> None:
    amount = {"currency": "USD", "issuer": GATEWAY, "value": "10"}
    tx = _payment(BOB, amount)
    meta = {
        "AffectedNodes": [
            _root(ALICE, "99999976", "99999988", seq=9),
            _trust_line(ALICE, GATEWAY, "90", "100"),
            _trust_line(BOB, GATEWAY, "20", "10"),
        ],
        "TransactionIndex": 0,
        "TransactionResult": "tesSUCCESS",
        "delivered_amount": amount,
    }
    assert affected_accounts(tx, meta) == {ALICE, BOB, GATEWAY}
    # Metadata alone names every party through the LowLimit/HighLimit issuers.
    assert affected_accounts({}, meta) == {ALICE, BOB, GATEWAY}
    assert ACCOUNT_ONE not in affected_accounts(tx, meta)


def test_trust_set_creating_a_line() -> None:
    tx = {
        "Account": CAROL,
        "Fee": "12",
        "Flags": 131072,
        "LimitAmount": {"currency": "USD", "issuer": GATEWAY, "value": "5000"},
        "Sequence": 3,
        "SigningPubKey": PUBKEY,
        "TransactionType": "TrustSet",
    }
    meta = {
        "AffectedNodes": [
            {
                "CreatedNode": {
                    "LedgerEntryType": "RippleState",
                    "LedgerIndex": TX_HASH,
                    "NewFields": {
                        "Balance": {"currency": "USD", "issuer": ACCOUNT_ONE, "value": "0"},
                        "Flags": 131072,
                        "HighLimit": {"currency": "USD", "issuer": CAROL, "value": "5000"},
                        "LowLimit": {"currency": "USD", "issuer": GATEWAY, "value": "0"},
                    },
                }
            },
            {
                "ModifiedNode": {
                    "FinalFields": {"Flags": 0, "Owner": GATEWAY, "RootIndex": TX_HASH},
                    "LedgerEntryType": "DirectoryNode",
                    "LedgerIndex": TX_HASH,
                }
            },
        ],
        "TransactionIndex": 1,
        "TransactionResult": "tesSUCCESS",
    }
    assert affected_accounts(tx, meta) == {CAROL, GATEWAY}
    assert affected_accounts({}, meta) == {CAROL, GATEWAY}
    assert mentioned_accounts(tx) == {CAROL, GATEWAY}


def _offer_node(
    kind: str, owner: str, gets: Any, pays: Any, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    fields = {
        "Account": owner,
        "BookDirectory": "4A0" + "0" * 61,
        "BookNode": "0",
        "Flags": 0,
        "OwnerNode": "0",
        "Sequence": 11,
        "TakerGets": gets,
        "TakerPays": pays,
    }
    node: dict[str, Any] = {"LedgerEntryType": "Offer", "LedgerIndex": TX_HASH}
    node["NewFields" if kind == "CreatedNode" else "FinalFields"] = fields
    if previous is not None:
        node["PreviousFields"] = previous
    return {kind: node}


def _crossing_meta() -> dict[str, Any]:
    return {
        "AffectedNodes": [
            _offer_node(
                "DeletedNode",
                BOB,
                {"currency": "USD", "issuer": GATEWAY, "value": "0"},
                "0",
                {
                    "TakerGets": {"currency": "USD", "issuer": GATEWAY, "value": "4"},
                    "TakerPays": "10000000",
                },
            ),
            _offer_node(
                "ModifiedNode",
                CAROL,
                {"currency": USD_HEX, "issuer": GATEWAY, "value": "1"},
                "2500000",
                {
                    "TakerGets": {"currency": "USD", "issuer": GATEWAY, "value": "2"},
                    "TakerPays": "5000000",
                },
            ),
            _offer_node(
                "CreatedNode",
                ALICE,
                "1000000",
                {"currency": "EUR", "issuer": GATEWAY2, "value": "0.37"},
            ),
        ],
        "TransactionIndex": 2,
        "TransactionResult": "tesSUCCESS",
    }


def test_offer_crossing_counts_makers_and_issuers_inside_taker_amounts() -> None:
    meta = _crossing_meta()
    tx = {
        "Account": ALICE,
        "TakerGets": "25000000",
        "TakerPays": {"currency": "USD", "issuer": GATEWAY, "value": "10"},
        "TransactionType": "OfferCreate",
    }
    # No RippleState or AccountRoot nodes here: GATEWAY and GATEWAY2 come only
    # from the issuers inside TakerGets/TakerPays of the offers.
    assert affected_accounts({}, meta) == {ALICE, BOB, CAROL, GATEWAY, GATEWAY2}
    assert affected_accounts(tx, meta) == {ALICE, BOB, CAROL, GATEWAY, GATEWAY2}


def test_affected_books_of_a_crossing_normalises_currency() -> None:
    # Each book is (in = TakerGets, out = TakerPays, domain): the offers a crossing
    # consumed sell USD for XRP (one with USD written in hex), the new one XRP for EUR.
    assert affected_books(_crossing_meta()) == {
        ("USD", GATEWAY, "XRP", "", ""),
        ("XRP", "", "EUR", GATEWAY2, ""),
    }


def test_modified_offers_are_read_from_previous_fields() -> None:
    # rippled's processTxn reads a ModifiedNode's PreviousFields: the book the offer
    # was in before the change, even where FinalFields say something else ...
    moved = _offer_node(
        "ModifiedNode",
        CAROL,
        {"currency": "EUR", "issuer": GATEWAY2, "value": "1"},
        "5",
        {"TakerGets": {"currency": "USD", "issuer": GATEWAY, "value": "2"}, "TakerPays": "9"},
    )
    # ... and skips one whose PreviousFields lack TakerGets or TakerPays.
    flags_only = _offer_node("ModifiedNode", BOB, "5", {**_USD, "value": "1"}, {"Flags": 0})
    half = _offer_node("ModifiedNode", BOB, "5", {**_USD, "value": "1"}, {"TakerPays": "7"})
    no_previous = _offer_node("ModifiedNode", DAVE, "5", {**_USD, "value": "1"})
    meta = {"AffectedNodes": [moved, flags_only, half, no_previous]}
    assert affected_books(meta) == {("USD", GATEWAY, "XRP", "", "")}


def test_only_successful_transactions_reach_books() -> None:
    meta = _crossing_meta()
    assert affected_books({**meta, "TransactionResult": "tecKILLED"}) == frozenset()
    assert affected_books({**meta, "TransactionResult": "tesSUCCESS"}, "tecKILLED")
    without = {k: v for k, v in meta.items() if k != "TransactionResult"}
    assert affected_books(without, "tecUNFUNDED_OFFER") == frozenset()
    assert affected_books(without, "tesSUCCESS") == affected_books(without)
    assert affected_books(without)


def test_domain_offers_have_their_own_book() -> None:
    domain = "5C" * 32
    created = _offer_node("CreatedNode", ALICE, "10", {**_USD, "value": "1"})
    created["CreatedNode"]["NewFields"]["DomainID"] = domain.lower()
    deleted = _offer_node("DeletedNode", BOB, "10", {**_EUR, "value": "1"})
    deleted["DeletedNode"]["FinalFields"]["DomainID"] = domain
    # A partial fill leaves DomainID out of PreviousFields, so rippled publishes it to
    # the open book's listeners; the hub does the same.
    modified = _offer_node(
        "ModifiedNode", CAROL, "10", {**_USD, "value": "1"}, {"TakerGets": "12", "TakerPays": _USD2}
    )
    modified["ModifiedNode"]["FinalFields"]["DomainID"] = domain
    meta = {"AffectedNodes": [created, deleted, modified]}
    assert affected_books(meta) == {
        ("XRP", "", "USD", GATEWAY, domain),
        ("XRP", "", "EUR", GATEWAY2, domain),
        ("XRP", "", "USD", GATEWAY, ""),
    }


_USD = {"currency": "USD", "issuer": GATEWAY}


_USD2 = {"currency": "USD", "issuer": GATEWAY, "value": "2"}


_EUR = {"currency": "EUR", "issuer": GATEWAY2}


def test_affected_books_ignores_other_entries_and_junk() -> None:
    meta = {
        "AffectedNodes": [
            _trust_line(ALICE, GATEWAY, "1", "2"),
            _offer_node("CreatedNode", ALICE, {"mpt_issuance_id": "00" * 24, "value": "1"}, "5"),
            {"DeletedNode": {"LedgerEntryType": "Offer", "FinalFields": {"TakerGets": 5}}},
            {"DeletedNode": {"LedgerEntryType": "Offer", "FinalFields": {"TakerGets": "5"}}},
            {"ModifiedNode": {"LedgerEntryType": "Offer", "PreviousFields": None}},
            {"ModifiedNode": "Offer"},
            None,
        ]
    }
    assert affected_books(meta) == frozenset()
    assert affected_books(None) == frozenset()


def test_previous_fields_are_ignored() -> None:
    meta = {
        "AffectedNodes": [
            {
                "ModifiedNode": {
                    "FinalFields": {
                        "Account": ALICE,
                        "Balance": "100",
                        "RegularKey": DAVE,
                    },
                    "LedgerEntryType": "AccountRoot",
                    "LedgerIndex": TX_HASH,
                    "PreviousFields": {"RegularKey": CAROL, "Balance": "112"},
                }
            },
            {
                "DeletedNode": {
                    "FinalFields": {"Account": BOB},
                    "LedgerEntryType": "Check",
                    "PreviousFields": {"Destination": GATEWAY},
                }
            },
        ]
    }
    assert affected_accounts({}, meta) == {ALICE, DAVE, BOB}


def test_created_node_reads_new_fields_only() -> None:
    meta = {
        "AffectedNodes": [
            {
                "CreatedNode": {
                    "LedgerEntryType": "Escrow",
                    "NewFields": {"Account": ALICE, "Destination": BOB},
                    "FinalFields": {"Account": CAROL},
                }
            }
        ]
    }
    assert affected_accounts({}, meta) == {ALICE, BOB}


def test_hashes_currency_codes_and_nested_fields_are_not_accounts() -> None:
    tx = {
        "Account": ALICE,
        "InvoiceID": TX_HASH,
        "Domain": "6578616D706C652E636F6D",
        "SigningPubKey": PUBKEY,
        "TransactionType": "AccountSet",
        "Currency": "USD",
        "Memos": [{"Memo": {"MemoData": BOB}}],
        "Signers": [{"Signer": {"Account": CAROL}}],
        "NotAnAddress": ALICE[:-1] + ("a" if ALICE[-1] != "a" else "b"),
    }
    assert mentioned_accounts(tx) == {ALICE}


def test_any_top_level_address_field_counts() -> None:
    tx = {
        "Account": ALICE,
        "Holder": BOB,
        "Subject": CAROL,
        "SomeFutureAccountField": DAVE,
        "Amount": {"currency": "USD", "issuer": GATEWAY, "value": "1"},
        "SendMax": {"currency": "EUR", "issuer": GATEWAY2, "value": "2"},
        "Fee": "12",
    }
    assert mentioned_accounts(tx) == {ALICE, BOB, CAROL, DAVE, GATEWAY, GATEWAY2}


def test_mpt_issuers_count() -> None:
    issuer_id = hashlib.sha256(b"mpt-issuer").digest()[:20]
    issuer = encode_account_id(issuer_id)
    issuance = ("0000002A" + issuer_id.hex()).upper()
    tx = {"Account": ALICE, "Amount": {"mpt_issuance_id": issuance, "value": "5"}}
    meta = {
        "AffectedNodes": [
            {
                "ModifiedNode": {
                    "LedgerEntryType": "MPToken",
                    "FinalFields": {"Account": BOB, "MPTokenIssuanceID": issuance},
                }
            }
        ]
    }
    assert mentioned_accounts(tx) == {ALICE, issuer}
    assert affected_accounts({}, meta) == {BOB, issuer}


@pytest.mark.parametrize(
    "meta",
    [
        None,
        {},
        {"AffectedNodes": None},
        {"AffectedNodes": "CreatedNode"},
        {"AffectedNodes": {"ModifiedNode": {}}},
        {
            "AffectedNodes": [
                None,
                1,
                "x",
                [],
                {"ModifiedNode": None},
                {"ModifiedNode": {"FinalFields": None}},
                {"ModifiedNode": {"FinalFields": ["Account", ALICE]}},
                {"CreatedNode": {"FinalFields": {"Account": ALICE}}},
                {"UnknownNode": {"FinalFields": {"Account": ALICE}}},
                {
                    "DeletedNode": {
                        "FinalFields": {
                            "Account": 12,
                            "Owner": None,
                            "Destination": b"rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",
                            "LowLimit": "100",
                            "HighLimit": {"issuer": 5},
                            "TakerGets": {"issuer": ACCOUNT_ZERO, "currency": "USD"},
                            "TakerPays": [GATEWAY],
                            "MPTokenIssuanceID": "zz" * 24,
                        }
                    }
                },
            ]
        },
    ],
)
def test_odd_metadata_is_tolerated(meta: Any) -> None:
    tx = {"Account": BOB, "Destination": 7, "Amount": None}
    assert affected_accounts(tx, meta) == {BOB}
    assert affected_books(meta) == frozenset()


@pytest.mark.parametrize("tx", [None, "tx", 5, [ALICE]])
def test_odd_transactions_are_tolerated(tx: Any) -> None:
    assert mentioned_accounts(tx) == frozenset()
    assert affected_accounts(tx, None) == frozenset()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("USD", "USD"),
        (USD_HEX, "USD"),
        (USD_HEX.lower(), "USD"),
        ("0" * 40, "XRP"),
        ("XRP", "XRP"),
        ("usd", "usd"),
        ("0000000000000000000000005852500000000000", "0000000000000000000000005852500000000000"),
        ("015841551A748AD2C1F76FF6ECB0CCCD00000000", "015841551A748AD2C1F76FF6ECB0CCCD00000000"),
        ("015841551a748ad2c1f76ff6ecb0cccd00000000", "015841551A748AD2C1F76FF6ECB0CCCD00000000"),
        ("0000000000000000000000005553440000000001", "0000000000000000000000005553440000000001"),
        ("not a currency", "not a currency"),
    ],
)
def test_normalize_currency(code: str, expected: str) -> None:
    assert normalize_currency(code) == expected


def test_amount_issue() -> None:
    assert amount_issue("1000") == ("XRP", "")
    assert amount_issue({"currency": "USD", "issuer": GATEWAY, "value": "1"}) == ("USD", GATEWAY)
    assert amount_issue({"currency": USD_HEX, "issuer": GATEWAY, "value": "1"}) == (
        "USD",
        GATEWAY,
    )
    for bad in (None, 5, {"mpt_issuance_id": "00" * 24, "value": "1"}, {"currency": "USD"}):
        with pytest.raises(ValueError, match="amount"):
            amount_issue(bad)


def test_book_key_from_subscribe_specs() -> None:
    # rippled's doSubscribe: in = taker_pays, out = taker_gets.
    usd = {"currency": "USD", "issuer": GATEWAY}
    assert book_key({"currency": "XRP"}, usd) == ("USD", GATEWAY, "XRP", "", "")
    assert book_key(usd, {"currency": "XRP"}) == ("XRP", "", "USD", GATEWAY, "")
    assert book_key({"currency": USD_HEX, "issuer": GATEWAY}, {"currency": "XRP"}) == book_key(
        usd, {"currency": "XRP"}
    )
    assert book_key({"currency": "XRP", "issuer": ACCOUNT_ZERO}, usd) == book_key(
        {"currency": "XRP"}, usd
    )
    assert book_key({"currency": "0" * 40}, usd) == ("USD", GATEWAY, "XRP", "", "")
    # rippled reads the currency with asString(): null is "", which is XRP.
    assert book_key({"currency": None}, usd) == ("USD", GATEWAY, "XRP", "", "")
    assert book_key({"currency": "XRP"}, usd, "AB" * 32)[4] == "AB" * 32
    assert reversed_book(book_key({"currency": "XRP"}, usd)) == ("XRP", "", "USD", GATEWAY, "")


def _ask_and_bid(gateway: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Book_test.cpp's two offers: an ask (TakerPays 700 XRP, TakerGets 100 USD) and a
    bid (TakerPays 100 USD, TakerGets 75 XRP), as the metadata of their OfferCreates."""
    usd = {"currency": "USD", "issuer": gateway, "value": "100"}
    ask = {"AffectedNodes": [_offer_node("CreatedNode", gateway, usd, "700000000")]}
    bid = {"AffectedNodes": [_offer_node("CreatedNode", gateway, "75000000", usd)]}
    return ask, bid


def test_one_side_subscriber_gets_the_ask_and_not_the_bid() -> None:
    """Book_test.cpp testOneSideEmptyBook: a subscriber with taker_gets XRP and
    taker_pays USD receives the offer whose TakerGets is USD, not the reverse one."""
    ask, bid = _ask_and_bid(ALICE)
    book = book_key({"currency": "XRP"}, {"currency": "USD", "issuer": ALICE})
    assert book in affected_books(ask)
    assert book not in affected_books(bid)


def test_both_sides_subscriber_gets_both() -> None:
    """Book_test.cpp testBothSidesEmptyBook: with ``both`` the reversed book is
    subscribed too, so both offers arrive."""
    ask, bid = _ask_and_bid(ALICE)
    book = book_key({"currency": "XRP"}, {"currency": "USD", "issuer": ALICE})
    both = {book, reversed_book(book)}
    assert both & affected_books(ask)
    assert both & affected_books(bid)


def test_multiple_books_route_independently() -> None:
    """Book_test.cpp testMultipleBooksOneSideEmptyBook: XRP/USD and CNY/JPY books, one
    side each; only the asks of each arrive."""
    cny = {"currency": "CNY", "issuer": ALICE}
    jpy = {"currency": "JPY", "issuer": ALICE}
    books = {
        book_key({"currency": "XRP"}, {"currency": "USD", "issuer": ALICE}),
        book_key(cny, jpy),
    }
    jpy_ask = _offer_node("CreatedNode", ALICE, {**jpy, "value": "100"}, {**cny, "value": "700"})
    jpy_bid = _offer_node("CreatedNode", ALICE, {**cny, "value": "75"}, {**jpy, "value": "100"})
    assert books & affected_books({"AffectedNodes": [jpy_ask]})
    assert not books & affected_books({"AffectedNodes": [jpy_bid]})


def test_crossing_reaches_the_book_of_the_offers_it_takes() -> None:
    """Book_test.cpp testCrossingSingleBookOffer: Charlie's OfferCreate (TakerPays 1000
    USD, TakerGets 1000 XRP) consumes Alice's and Bob's asks (TakerGets USD) and never
    rests; a taker_gets XRP / taker_pays USD subscriber gets it, once."""
    usd = {"currency": "USD", "issuer": GATEWAY}
    consumed = [
        _offer_node(
            "DeletedNode",
            owner,
            {**usd, "value": "0"},
            "0",
            {"TakerGets": {**usd, "value": "500"}, "TakerPays": "500000000"},
        )
        for owner in (ALICE, BOB)
    ]
    books = affected_books({"AffectedNodes": consumed, "TransactionResult": "tesSUCCESS"})
    assert books == {book_key({"currency": "XRP"}, usd)}


@pytest.mark.parametrize(
    ("gets", "pays", "token"),
    [
        ({"currency": "XRP"}, {"currency": "US"}, "srcCurMalformed"),
        ({"currency": "XRP"}, {"currency": 5}, "srcCurMalformed"),
        ({"currency": "XRP"}, {}, "srcCurMalformed"),
        ({"currency": "XRP"}, {"currency": "USD"}, "srcIsrMalformed"),
        ({"currency": "XRP"}, {"currency": "USD", "issuer": "nope"}, "srcIsrMalformed"),
        ({"currency": "XRP"}, {"currency": "USD", "issuer": ACCOUNT_ONE}, "srcIsrMalformed"),
        (
            {"currency": "USD", "issuer": GATEWAY},
            {"currency": "XRP", "issuer": GATEWAY},
            "srcIsrMalformed",
        ),
        ({"currency": "U$D!"}, {"currency": "XRP"}, "dstAmtMalformed"),
        ({"currency": "EUR"}, {"currency": "XRP"}, "dstIsrMalformed"),
        (
            {"currency": "XRP", "issuer": GATEWAY},
            {"currency": "EUR", "issuer": GATEWAY},
            "dstIsrMalformed",
        ),
        ({"currency": "XRP"}, {"currency": "XRP"}, "badMarket"),
        (
            {"currency": "USD", "issuer": GATEWAY},
            {"currency": USD_HEX, "issuer": GATEWAY},
            "badMarket",
        ),
        ("XRP", {"currency": "XRP"}, "invalidParams"),
        ({"currency": "XRP"}, None, "srcCurMalformed"),
        (None, {"currency": "XRP"}, "dstAmtMalformed"),
        ({"currency": "XRP"}, {"currency": True}, "srcCurMalformed"),
        ({"currency": "XRP"}, {"currency": "USD", "issuer": None}, "srcIsrMalformed"),
        # Both sides are bad: rippled reports taker_pays first.
        ({"currency": "??"}, {"currency": "??"}, "srcCurMalformed"),
    ],
)
def test_book_key_errors_carry_rippled_tokens(gets: Any, pays: Any, token: str) -> None:
    with pytest.raises(BookSpecError) as info:
        book_key(gets, pays)
    assert info.value.token == token
    assert isinstance(info.value, ValueError)


def test_parse_domain() -> None:
    assert parse_domain("ab" * 32) == "AB" * 32
    for bad in ("ab" * 31, "zz" * 32, 5, None):
        with pytest.raises(BookSpecError) as info:
            parse_domain(bad)
        assert info.value.token == "domainMalformed"
