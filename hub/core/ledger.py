"""What the hub knows of the ledger: the latest ``ledgerClosed`` and the range seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_SUBSCRIBE_FIELDS = (
    "ledger_index",
    "ledger_hash",
    "ledger_time",
    "fee_base",
    "reserve_base",
    "reserve_inc",
    "network_id",
    "validated_ledgers",
)


@dataclass(slots=True)
class LedgerState:
    latest: dict[str, Any] | None = None
    received_at: float | None = None
    first_seen: int | None = None

    def update(self, body: dict[str, Any], now: float) -> None:
        index = body["ledger_index"]
        if self.latest is not None and index <= self.latest["ledger_index"]:
            return
        if self.first_seen is None:
            self.first_seen = index
        self.latest = body
        self.received_at = now

    @property
    def index(self) -> int | None:
        return None if self.latest is None else int(self.latest["ledger_index"])

    def complete_ledgers(self) -> str:
        if self.latest is None:
            return "empty"
        given = self.latest.get("validated_ledgers")
        if isinstance(given, str) and given:
            return given
        return f"{self.first_seen}-{self.latest['ledger_index']}"

    def subscribe_fields(self) -> dict[str, Any]:
        """What ``subscribe`` to ``ledger`` answers: the latest ledger, or nothing yet."""
        if self.latest is None:
            return {}
        out = {key: self.latest[key] for key in _SUBSCRIBE_FIELDS if key in self.latest}
        out.setdefault("validated_ledgers", self.complete_ledgers())
        return out

    def validated_ledger(self, now: float) -> dict[str, Any] | None:
        """``server_info``'s ``validated_ledger`` object, in XRP as rippled reports it."""
        if self.latest is None or self.received_at is None:
            return None
        latest = self.latest
        return {
            "age": max(0, int(now - self.received_at)),
            "base_fee_xrp": latest["fee_base"] / 1_000_000,
            "hash": latest["ledger_hash"],
            "reserve_base_xrp": latest["reserve_base"] / 1_000_000,
            "reserve_inc_xrp": latest["reserve_inc"] / 1_000_000,
            "seq": latest["ledger_index"],
        }
