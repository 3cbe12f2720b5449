"""Book sides as the tests name them: as issues (a currency and its issuer) and as
the specs a subscribe or ``book_offers`` carries."""

from __future__ import annotations

from hub.xrpl.accounts import Issue
from hub.xrpl.books import BookQuery
from tests.helpers.samples import CAROL, GATEWAY

USD: Issue = ("USD", GATEWAY)
XRP: Issue = ("XRP", "")
SELL_USD = BookQuery(taker_gets=USD, taker_pays=XRP, taker=CAROL)
XRP_SPEC = {"currency": "XRP"}
USD_SPEC = {"currency": "USD", "issuer": GATEWAY}
