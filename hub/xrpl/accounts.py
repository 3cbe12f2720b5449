"""Which accounts and order books a transaction touches.

Works on plain dicts in rippled's JSON shape (``tx_json`` and ``meta``), so the
hub can route stream messages to ``accounts``/``accounts_proposed``/``books``
subscribers without re-parsing binary.  Everything here is total: odd input
(missing meta, non-dict nodes, non-string values) is skipped, never raised on,
because a malformed upstream message must not take down fan-out.

Account-field rule.  JSON carries no field types, so a field counts as an
account field when its value is a string that decodes as a classic address
(base58, version 0, valid checksum).  Hashes, hex blobs, numbers and currency
codes can never pass that check, and new account-typed fields (Holder,
Subject, Counterparty, ...) are picked up without a list to maintain.  Only
top-level fields of the transaction and of each node's NewFields/FinalFields
are examined, as rippled does; nested arrays such as Memos or Signers are not.

Currency canonical form.  ``"XRP"`` for the native asset; the three-character
code for a standard currency, whether written as ``"USD"`` or as its 40-hex
form; upper-case 40-hex for everything else.  The hex form of the standard
code "XRP" is not a valid issued currency and stays hex, so it can never alias
native XRP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.xrpl.addresses import ACCOUNT_ONE, ACCOUNT_ZERO, encode_account_id, is_classic_address

__all__ = [
    "XRP",
    "Book",
    "BookSpecError",
    "Issue",
    "affected_accounts",
    "affected_books",
    "amount_issue",
    "book_key",
    "mentioned_accounts",
    "normalize_currency",
    "parse_domain",
    "reversed_book",
]

XRP = "XRP"

Issue = tuple[str, str]
"""(currency, issuer): ``("XRP", "")`` for XRP, else canonical currency and address."""

Book = tuple[str, str, str, str, str]
"""rippled's ``Book``: (in currency, in issuer, out currency, out issuer, domain).

A subscriber's book has ``in`` = its ``taker_pays`` and ``out`` = its ``taker_gets``
(``doSubscribe``); a transaction reaches the book whose ``in`` is an offer's TakerGets
and ``out`` its TakerPays (``OrderBookDB::processTxn``). ``domain`` is a permissioned
DEX domain (64 upper-case hex digits), ``""`` for the open book.
"""

_XRP_ISSUE: Issue = (XRP, "")
_SUCCESS = "tesSUCCESS"
_NODE_KINDS = {
    "CreatedNode": "NewFields",
    "ModifiedNode": "FinalFields",
    "DeletedNode": "FinalFields",
}
# Where processTxn reads an Offer's TakerGets/TakerPays: the values before a change.
_BOOK_FIELDS = {
    "CreatedNode": "NewFields",
    "ModifiedNode": "PreviousFields",
    "DeletedNode": "FinalFields",
}
_ISSUER_FIELDS = ("LowLimit", "HighLimit", "TakerPays", "TakerGets")
_ISO_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789<>(){}[]|?!@#$%^&*"
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_MPT_ID_HEX_LEN = 48


class BookSpecError(ValueError):
    """A subscribe ``books`` entry is malformed.

    ``token`` is the rippled error rippled itself would return for the same
    input (``srcCurMalformed``, ``srcIsrMalformed``, ``dstAmtMalformed``,
    ``dstIsrMalformed``, ``badMarket``, ``domainMalformed`` or ``invalidParams``),
    so callers can answer with it directly.
    """

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(ch in _HEX_DIGITS for ch in text)


def normalize_currency(code: str) -> str:
    """Return the canonical spelling of a currency code (see module docstring).

    Strings that are neither a 3-character code nor 40 hex digits are returned
    unchanged; validation is the caller's job (see :func:`book_key`).
    """
    if not _is_hex(code, 40):
        return code
    raw = bytes.fromhex(code)
    if not any(raw):
        return XRP
    if not any(raw[:12]) and not any(raw[15:]):
        iso = raw[12:15].decode("latin-1")
        if iso != XRP and all(ch in _ISO_CHARS for ch in iso):
            return iso
    return code.upper()


def _mpt_issuer(issuance_id: object) -> str | None:
    """Issuer encoded in an MPTokenIssuanceID (4-byte sequence + account ID)."""
    if not isinstance(issuance_id, str) or not _is_hex(issuance_id, _MPT_ID_HEX_LEN):
        return None
    issuer = encode_account_id(bytes.fromhex(issuance_id)[4:])
    return None if issuer == ACCOUNT_ZERO else issuer


def _amount_issuer(amount: object) -> str | None:
    """Issuer of an issued-currency or MPT amount object; None for XRP or junk."""
    if not isinstance(amount, dict):
        return None
    issuer = amount.get("issuer")
    if is_classic_address(issuer) and issuer != ACCOUNT_ZERO:
        return issuer
    return _mpt_issuer(amount.get("mpt_issuance_id"))


def _address_values(fields: dict[Any, Any]) -> Iterable[str]:
    for value in fields.values():
        if is_classic_address(value):
            yield value


def mentioned_accounts(tx: dict[str, Any]) -> frozenset[str]:
    """Accounts a transaction names itself, as rippled's getMentionedAccounts.

    This is what ``accounts_proposed`` matches unvalidated transactions on:
    every top-level address field plus the issuer of every top-level amount.
    """
    fields: object = tx
    if not isinstance(fields, dict):
        return frozenset()
    found = set(_address_values(fields))
    for value in fields.values():
        issuer = _amount_issuer(value)
        if issuer is not None:
            found.add(issuer)
    return frozenset(found)


def _node_fields(
    meta: dict[str, Any] | None, kinds: Mapping[str, str] = _NODE_KINDS
) -> Iterable[tuple[object, dict[Any, Any]]]:
    """Yield (LedgerEntryType, fields) for each usable node, the fields of each node
    kind being ``kinds[kind]`` (NewFields/FinalFields unless told otherwise)."""
    if not isinstance(meta, dict):
        return
    nodes = meta.get("AffectedNodes")
    if not isinstance(nodes, list):
        return
    for wrapper in nodes:
        if not isinstance(wrapper, dict):
            continue
        for kind, fields_key in kinds.items():
            node = wrapper.get(kind)
            if not isinstance(node, dict):
                continue
            fields = node.get(fields_key)
            if isinstance(fields, dict):
                yield node.get("LedgerEntryType"), fields


def _meta_accounts(meta: dict[str, Any] | None) -> set[str]:
    """rippled's TxMeta::getAffectedAccounts on JSON metadata.

    PreviousFields are deliberately ignored: an account that only appears in
    the old value (a replaced RegularKey, say) is not notified, as in rippled.
    """
    found: set[str] = set()
    for _entry_type, fields in _node_fields(meta):
        found.update(_address_values(fields))
        for name in _ISSUER_FIELDS:
            issuer = _amount_issuer(fields.get(name))
            if issuer is not None:
                found.add(issuer)
        mpt_issuer = _mpt_issuer(fields.get("MPTokenIssuanceID"))
        if mpt_issuer is not None:
            found.add(mpt_issuer)
    return found


def affected_accounts(tx: dict[str, Any], meta: dict[str, Any] | None) -> frozenset[str]:
    """Accounts whose ``accounts`` subscribers should see this validated tx.

    The union of :func:`mentioned_accounts` and the accounts rippled extracts
    from metadata.  rippled uses metadata alone; adding the transaction's own
    fields costs little and keeps routing right when meta is missing or thin.
    """
    return mentioned_accounts(tx) | frozenset(_meta_accounts(meta))


def amount_issue(amount: object) -> Issue:
    """The (currency, issuer) of an amount: a drops string is XRP.

    Raises ValueError for anything that is not an XRP or issued-currency
    amount (MPT amounts have no order book here).
    """
    if isinstance(amount, str):
        return _XRP_ISSUE
    if isinstance(amount, dict):
        currency = amount.get("currency")
        if isinstance(currency, str):
            canonical = normalize_currency(currency)
            if canonical == XRP:
                return _XRP_ISSUE
            issuer = amount.get("issuer")
            if isinstance(issuer, str):
                return canonical, issuer
    raise ValueError(f"not an XRP or issued-currency amount: {amount!r}")


def affected_books(meta: dict[str, Any] | None, result: object = None) -> frozenset[Book]:
    """The books whose subscribers get this validated transaction, as rippled's
    ``OrderBookDB::processTxn`` finds them.

    Only a ``tesSUCCESS`` transaction is routed (``pubValidatedTransaction``): the
    result is meta's ``TransactionResult``, else ``result`` (the message's
    ``engine_result``); unknown counts as success. Each Offer node is read where
    rippled reads it — NewFields of a CreatedNode, PreviousFields of a ModifiedNode,
    FinalFields of a DeletedNode — and skipped unless both TakerGets and TakerPays are
    there; its book is ``(TakerGets issue, TakerPays issue, DomainID)``. So a modified
    offer's book carries a domain only when PreviousFields does, as in rippled.
    """
    if not isinstance(meta, dict):
        return frozenset()
    outcome = meta.get("TransactionResult", result)
    if outcome is not None and outcome != _SUCCESS:
        return frozenset()
    books: set[Book] = set()
    for entry_type, fields in _node_fields(meta, _BOOK_FIELDS):
        if entry_type != "Offer":
            continue
        try:
            gets = amount_issue(fields["TakerGets"])
            pays = amount_issue(fields["TakerPays"])
        except (KeyError, ValueError):
            continue
        books.add((*gets, *pays, _domain_of(fields.get("DomainID"))))
    return frozenset(books)


def _domain_of(value: object) -> str:
    return value.upper() if isinstance(value, str) and _is_hex(value, 64) else ""


def reversed_book(book: Book) -> Book:
    """The other side of a market (rippled's ``reversed``): in and out swapped."""
    in_cur, in_iss, out_cur, out_iss, domain = book
    return out_cur, out_iss, in_cur, in_iss, domain


def parse_domain(value: object) -> str:
    """A ``domain`` parameter: 64 hex digits (upper-cased); raises BookSpecError."""
    if not isinstance(value, str) or not _is_hex(value, 64):
        raise BookSpecError("domainMalformed", "domain must be 64 hexadecimal digits")
    return value.upper()


def _parse_currency(value: object) -> str | None:
    """rippled's to_currency on ``asString()``: null reads as "" (XRP), an integer as its
    digits; then "" or "XRP", a 3-char ISO-charset code, or 40 hex."""
    if value is None:
        value = ""
    elif type(value) is int:
        value = str(value)
    if not isinstance(value, str):
        return None
    if value in ("", XRP):
        return XRP
    if len(value) == 3:
        return value if all(ch in _ISO_CHARS for ch in value) else None
    if _is_hex(value, 40):
        return normalize_currency(value)
    return None


def _parse_issuer(value: object) -> str | None:
    """rippled's to_issuer: a classic address or 40 hex digits of account ID."""
    if is_classic_address(value):
        return value
    if isinstance(value, str) and _is_hex(value, 40):
        return encode_account_id(bytes.fromhex(value))
    return None


def _book_side(spec: object, cur_token: str, isr_token: str, side: str) -> Issue:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise BookSpecError("invalidParams", f"{side} must be an object")
    if "currency" not in spec:
        raise BookSpecError(cur_token, f"{side}.currency is missing")
    currency = _parse_currency(spec["currency"])
    if currency is None:
        raise BookSpecError(cur_token, f"{side}.currency is malformed")
    issuer = ""
    if "issuer" in spec:
        parsed = _parse_issuer(spec["issuer"])
        if parsed is None or parsed == ACCOUNT_ONE:
            raise BookSpecError(isr_token, f"{side}.issuer is malformed")
        issuer = "" if parsed == ACCOUNT_ZERO else parsed
    if (currency == XRP) != (issuer == ""):
        raise BookSpecError(isr_token, f"{side}.issuer does not match its currency")
    return currency, issuer


def book_key(taker_gets: object, taker_pays: object, domain: str = "") -> Book:
    """The subscriber's Book for a ``books`` entry, validated as rippled's doSubscribe.

    ``taker_pays`` is checked first, like rippled, so the reported error is the one
    rippled would report; each side may be null (then its currency is missing). The
    Book is ``in = taker_pays``, ``out = taker_gets``. Raises BookSpecError.
    """
    pays = _book_side(taker_pays, "srcCurMalformed", "srcIsrMalformed", "taker_pays")
    gets = _book_side(taker_gets, "dstAmtMalformed", "dstIsrMalformed", "taker_gets")
    if pays == gets:
        raise BookSpecError("badMarket", "taker_gets and taker_pays are the same asset")
    return (*pays, *gets, domain)
