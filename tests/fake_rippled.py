"""A stand-in for rippled in tests: a hub that also answers ``ledger`` and ``ledger_entry``.

It keeps every ledger it has published (or been told about) in rippled's v2 ``ledger``
shape, so a relaying hub can mend gaps from it, and answers ``account_info`` and the
admin ``peers`` so forwarding can be checked. ``forget`` drops a ledger from its
history, as a rippled with a short history would.
"""

from __future__ import annotations

from typing import Any

import trio

from hub import Hub
from hub import methods as real
from hub.dispatch import Call, Methods
from hub.errors import RPCError
from hub.sources.upstream import FEE_SETTINGS_INDEX
from tests.conftest import make_config


class FakeRippled:
    def __init__(self, port: int = 0) -> None:
        self.ledgers: dict[int, dict[str, Any]] = {}
        self.fees: dict[int, dict[str, Any]] = {}
        self.asked: list[str] = []
        table = Methods()
        for name in ("ping", "subscribe", "unsubscribe", "publish", "server_info"):
            table.register(name, admin=name == "publish")(getattr(real, name))
        table.register("version")(real.version_v1)
        table.register("version", since=2)(real.version_v2)
        table.register("ledger")(self._ledger)
        table.register("ledger_entry")(self._ledger_entry)
        table.register("account_info")(self._account_info)
        table.register("peers", admin=True)(self._peers)
        self.hub = Hub(make_config(server={"port": port}), methods=table)

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.hub.run)

    @property
    def url(self) -> str:
        return self.hub.url

    def remember(self, messages: list[dict[str, Any]]) -> None:
        """Keep a ledger's messages as the history ``ledger`` answers from."""
        closed = next(m for m in messages if m["type"] == "ledgerClosed")
        index = closed["ledger_index"]
        txs = [m for m in messages if m["type"] == "transaction"]
        self.ledgers[index] = {
            "ledger_index": index,
            "ledger_hash": closed["ledger_hash"],
            "close_time": closed["ledger_time"],
            "closed": True,
            "transactions": [
                {"tx_json": {k: v for k, v in m["tx_json"].items() if k != "date"},
                 "meta": m["meta"], "hash": m["hash"]}
                for m in txs
            ],
        }  # fmt: skip
        self.fees[index] = {
            "LedgerEntryType": "FeeSettings",
            "BaseFeeDrops": closed["fee_base"],
            "ReserveBaseDrops": closed["reserve_base"],
            "ReserveIncrementDrops": closed["reserve_inc"],
        }

    def forget(self, index: int) -> None:
        del self.ledgers[index]

    async def _ledger(self, call: Call) -> dict[str, Any]:
        self.asked.append("ledger")
        index = call.params.get("ledger_index")
        if index not in self.ledgers:
            raise RPCError("lgrNotFound", "ledgerNotFound")
        return {"ledger": self.ledgers[index], "ledger_index": index, "validated": True}

    async def _ledger_entry(self, call: Call) -> dict[str, Any]:
        self.asked.append("ledger_entry")
        index = call.params.get("ledger_index")
        if call.params.get("index") != FEE_SETTINGS_INDEX or index not in self.fees:
            raise RPCError("lgrNotFound", "entryNotFound")
        return {"node": self.fees[index], "index": FEE_SETTINGS_INDEX, "ledger_index": index}

    async def _account_info(self, call: Call) -> dict[str, Any]:
        self.asked.append("account_info")
        if call.params.get("account") == "rBad":
            raise RPCError("actMalformed")
        return {
            "account_data": {"Account": call.params.get("account"), "Balance": "1000"},
            "seen_api_version": call.api_version,
        }

    async def _peers(self, call: Call) -> dict[str, Any]:
        self.asked.append("peers")
        return {"peers": []}
