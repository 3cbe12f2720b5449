"""Stream messages entering the hub: validated on entry, kept whole, tagged by ``type``.

An event is the message as a rippled API v2 subscriber receives it. The Structs below
check the fields the hub relies on (routing, ledger state); every other field, known or
not, is kept in ``body`` and passed through untouched, so a newer rippled's additions
reach clients without a hub release. The v1 form of a transaction (``transaction``
with ``hash`` inside, ``Amount`` on Payments) is accepted and normalised to v2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final, get_args

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from hub.xrpl.accounts import Book, affected_accounts, affected_books, mentioned_accounts

log = logging.getLogger(__name__)

Hash = Annotated[str, Meta(pattern="^[0-9A-Fa-f]{64}$")]
Index = Annotated[int, Meta(ge=0)]


class _Message(Struct, tag_field="type"):
    pass


class LedgerClosed(_Message, tag="ledgerClosed"):
    ledger_index: Index
    ledger_hash: Hash
    ledger_time: Index
    fee_base: Index
    reserve_base: Index
    reserve_inc: Index
    txn_count: Index = 0
    validated_ledgers: str | UnsetType = UNSET


class Transaction(_Message, tag="transaction"):
    tx_json: dict[str, Any]
    hash: Hash
    validated: bool = False
    meta: dict[str, Any] | UnsetType = UNSET
    ledger_index: Index | UnsetType = UNSET
    engine_result: str | UnsetType = UNSET


class ValidationReceived(_Message, tag="validationReceived"):
    validation_public_key: str
    ledger_hash: Hash
    ledger_index: Index | UnsetType = UNSET


class BookChanges(_Message, tag="bookChanges"):
    ledger_index: Index
    ledger_hash: Hash
    changes: list[dict[str, Any]]


class ServerStatus(_Message, tag="serverStatus"):
    server_status: str | UnsetType = UNSET


class ConsensusPhase(_Message, tag="consensusPhase"):
    consensus: str


class ManifestReceived(_Message, tag="manifestReceived"):
    master_key: str


class PeerStatusChange(_Message, tag="peerStatusChange"):
    action: str


Known = (
    LedgerClosed
    | Transaction
    | ValidationReceived
    | BookChanges
    | ServerStatus
    | ConsensusPhase
    | ManifestReceived
    | PeerStatusChange
)

_BY_KIND: Final[dict[object, Any]] = {kind.__struct_config__.tag: kind for kind in get_args(Known)}
"""Each message type by its tag: converting to the one class is several times cheaper
than converting to the union, which is only asked for an unknown tag (for its error)."""

KINDS: Final = frozenset(
    {
        "ledgerClosed",
        "transaction",
        "validationReceived",
        "bookChanges",
        "serverStatus",
        "consensusPhase",
        "manifestReceived",
        "peerStatusChange",
    }
)


class EventError(ValueError):
    """A message that is not a stream message the hub knows; says which field is wrong."""


@dataclass(frozen=True, slots=True)
class Routes:
    """The accounts and order books a transaction touches: what ``accounts``,
    ``accounts_proposed`` and ``books`` subscriptions match it on."""

    accounts: frozenset[str] = frozenset()
    books: frozenset[Book] = frozenset()


NO_ROUTES: Final = Routes()


def routes_of(kind: str, body: dict[str, Any], validated: bool) -> Routes:
    """A message's routes: a validated transaction's affected accounts and books, a
    proposed one's mentioned accounts, nothing for any other message."""
    tx = body.get("tx_json") if kind == "transaction" else None
    if not isinstance(tx, dict):
        return NO_ROUTES
    if not validated:
        return Routes(mentioned_accounts(tx))
    meta = body.get("meta")
    meta = meta if isinstance(meta, dict) else None
    result = body.get("engine_result")
    books = affected_books(meta, result if isinstance(result, str) else None) if meta else None
    return Routes(affected_accounts(tx, meta), books or frozenset())


@dataclass(slots=True, eq=False)
class Event:
    """A validated message plus what routing needs.

    Its :attr:`routes` are worked out the first time something asks: most of the cost
    of validating a transaction, which a hub with no ``accounts`` or ``books``
    subscriber never needs.
    """

    kind: str
    body: dict[str, Any]
    validated: bool = False
    ledger_index: int | None = None
    known_routes: Routes | None = None
    """The routes once worked out (or given)."""
    source: Callable[[], dict[str, Any]] | None = None
    """Where the body comes from when ``body`` is not kept (a history entry's event):
    asked once, only if the routes are."""

    @property
    def routes(self) -> Routes:
        if self.known_routes is None:
            body = self.source() if self.source is not None else self.body
            self.known_routes = routes_of(self.kind, body, self.validated)
        return self.known_routes

    @property
    def accounts(self) -> frozenset[str]:
        return self.routes.accounts

    @property
    def books(self) -> frozenset[Book]:
        return self.routes.books


def parse(message: object) -> Event:
    """Validate one message and derive its routing facts; raises :class:`EventError`."""
    if isinstance(message, Event):
        return message
    if not isinstance(message, dict):
        raise EventError("a stream message must be a JSON object")
    body = _normalised(message)
    try:
        tag = body.get("type")
        known = msgspec.convert(body, _BY_KIND.get(tag, Known) if isinstance(tag, str) else Known)
    except msgspec.ValidationError as exc:
        raise EventError(str(exc)) from None
    if isinstance(known, Transaction):
        index = known.ledger_index if isinstance(known.ledger_index, int) else None
        return Event("transaction", body, known.validated, index)
    if isinstance(known, LedgerClosed | BookChanges):
        return Event(body["type"], body, ledger_index=known.ledger_index)
    if isinstance(known, ValidationReceived) and isinstance(known.ledger_index, int):
        return Event(body["type"], body, ledger_index=known.ledger_index)
    return Event(body["type"], body)


def parse_valid(messages: Iterable[object], rejected: Callable[[EventError], None]) -> list[Event]:
    """The valid events among published ``messages``; each invalid one is logged and
    reported to ``rejected`` (which counts it), never delivered."""
    valid = []
    for message in messages:
        try:
            valid.append(parse(message))
        except EventError as exc:
            log.warning("rejected a published message: %s", exc)
            rejected(exc)
    return valid


def _normalised(message: dict[str, Any]) -> dict[str, Any]:
    """The v2 form of a v1 message; v2 messages come back as they are."""
    kind = message.get("type")
    if (
        kind == "transaction"
        and "tx_json" not in message
        and isinstance(message.get("transaction"), dict)
    ):
        body = dict(message)
        tx = dict(body.pop("transaction"))
        if "hash" in tx:
            body.setdefault("hash", tx.pop("hash"))
        if tx.get("TransactionType") == "Payment" and "Amount" in tx:
            amount = tx.pop("Amount")
            tx.setdefault("DeliverMax", amount)
        body["tx_json"] = tx
        return body
    if kind == "validationReceived" and isinstance(message.get("ledger_index"), str):
        text = message["ledger_index"]
        if text.isascii() and text.isdigit() and len(text) <= 10:
            return {**message, "ledger_index": int(text)}
    return message
