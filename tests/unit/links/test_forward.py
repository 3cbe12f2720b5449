"""Forwarding to the upstream without connecting: the headers that name the client, and
book pages asked of the upstream with ``book_offers``."""

from __future__ import annotations

from typing import Any

import pytest

from hub.links.forward import UpstreamBooks, forwarding_headers
from hub.wire.errors import RPCError
from hub.xrpl.books import BookPage, BookQuery
from tests.helpers.books import SELL_USD, USD, USD_SPEC, XRP, XRP_SPEC
from tests.helpers.samples import ALICE, BOB


def test_the_client_is_named_in_both_headers_ipv6_quoted() -> None:
    assert forwarding_headers("203.0.113.7") == [
        (b"forwarded", b"for=203.0.113.7"),
        (b"x-forwarded-for", b"203.0.113.7"),
    ]
    assert forwarding_headers("2001:db8::1") == [
        (b"forwarded", b'for="[2001:db8::1]"'),
        (b"x-forwarded-for", b"2001:db8::1"),
    ]


async def test_upstream_books_asks_book_offers() -> None:
    sent: list[tuple[dict[str, Any], int]] = []

    async def forward(body: dict[str, Any], version: int) -> dict[str, Any]:
        sent.append((body, version))
        result = {"offers": [{"Account": ALICE}], "ledger_index": 12, "validated": True}
        return {"status": "success", "type": "response", "result": result}

    query = BookQuery(taker_gets=USD, taker_pays=XRP, taker=BOB, limit=5, ledger_index=12)
    got = await UpstreamBooks(forward).book_page(query)
    assert got == BookPage([{"Account": ALICE}], 12)
    assert sent == [
        (
            {
                "command": "book_offers",
                "taker_gets": USD_SPEC,
                "taker_pays": XRP_SPEC,
                "limit": 5,
                "ledger_index": 12,
                "taker": BOB,
            },
            2,
        )
    ]
    domain = BookQuery(taker_gets=XRP, taker_pays=USD, domain="AB" * 32)
    await UpstreamBooks(forward).book_page(domain)
    assert sent[-1][0]["ledger_index"] == "validated"
    assert sent[-1][0]["domain"] == "AB" * 32
    assert "taker" not in sent[-1][0]


@pytest.mark.parametrize(
    ("reply", "token"),
    [
        (
            {"status": "error", "error": "lgrNotFound", "error_message": "ledgerNotFound"},
            "lgrNotFound",
        ),
        ({"status": "error", "error": "noNetwork"}, "failedToForward"),
        ({"status": "success", "result": {"offers": "none"}}, "failedToForward"),
    ],
)
async def test_upstream_books_errors(reply: dict[str, Any], token: str) -> None:
    async def forward(body: dict[str, Any], version: int) -> dict[str, Any]:
        return reply

    with pytest.raises(RPCError) as info:
        await UpstreamBooks(forward).book_page(SELL_USD)
    assert info.value.token == token
