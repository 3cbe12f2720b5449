"""A stand-in for rippled in tests: a hub that also answers ``ledger`` and ``ledger_entry``.

It keeps every ledger it has published (or been told about) in rippled's v2 ``ledger``
shape, so a relaying hub can mend gaps from it, and answers ``account_info`` and the
admin ``peers`` so forwarding can be checked. ``forget`` drops a ledger from its
history, as a rippled with a short history would. ``server_info`` says
:data:`BUILD_VERSION` and the configured ``network_id``, as a rippled does; ``fee``,
``ledger`` with ``"validated"`` and ``account_info``'s ``Sequence`` are what client
libraries' autofill asks for; ``book_offers`` answers :attr:`FakeRippled.book` (and
waits for :attr:`FakeRippled.book_gate` when one is set).
"""

from __future__ import annotations

from typing import Any, Final

import trio

from hub import Hub
from hub.core import methods as real
from hub.core.dispatch import Call, Methods
from hub.wire.errors import RPCError
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX
from tests.helpers.hubs import eventually, make_config, start_hub
from tests.helpers.samples import ledger_closed

BUILD_VERSION: Final = "2.4.0"


class FakeRippled:
    def __init__(self, port: int = 0, network_id: int | None = None) -> None:
        self.ledgers: dict[int, dict[str, Any]] = {}
        self.fees: dict[int, dict[str, Any]] = {}
        self.asked: list[str] = []
        self.book_requests: list[dict[str, Any]] = []
        self.book: dict[str, Any] | None = None
        self.book_gate: trio.Event | None = None
        table = Methods()
        for name in ("ping", "subscribe", "unsubscribe", "publish"):
            table.register(name, admin=name == "publish")(getattr(real, name))
        table.register("server_info")(self._server_info)
        table.register("version")(real.version_v1)
        table.register("version", since=2)(real.version_v2)
        table.register("ledger")(self._ledger)
        table.register("ledger_entry")(self._ledger_entry)
        table.register("account_info")(self._account_info)
        table.register("fee")(self._fee)
        table.register("book_offers")(self._book_offers)
        table.register("peers", admin=True)(self._peers)
        config = make_config(server={"port": port, "network_id": network_id})
        self.hub = Hub(config, methods=table)

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

    async def _server_info(self, call: Call) -> dict[str, Any]:
        self.asked.append("server_info")
        result = real.server_info(call)
        info = {k: v for k, v in result["info"].items() if k != "hub"}
        return {"info": {**info, "build_version": BUILD_VERSION}}

    async def _ledger(self, call: Call) -> dict[str, Any]:
        self.asked.append("ledger")
        index = call.params.get("ledger_index")
        if index == "validated" and self.hub.node.ledger.index is not None:
            return {"ledger_index": self.hub.node.ledger.index, "validated": True, "ledger": {}}
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
            "account_data": {
                "Account": call.params.get("account"),
                "Balance": "1000",
                "Sequence": 7,
            },
            "seen_api_version": call.api_version,
        }

    async def _fee(self, call: Call) -> dict[str, Any]:
        self.asked.append("fee")
        drops = {"base_fee": "10", "median_fee": "5000", "minimum_fee": "10"}
        return {"drops": {**drops, "open_ledger_fee": "10"}, "current_queue_size": "0"}

    async def _book_offers(self, call: Call) -> dict[str, Any]:
        self.asked.append("book_offers")
        self.book_requests.append(dict(call.params))
        if self.book_gate is not None:
            await self.book_gate.wait()
        if self.book is None:
            raise RPCError("lgrNotFound", "ledgerNotFound")
        return self.book

    async def _peers(self, call: Call) -> dict[str, Any]:
        self.asked.append("peers")
        return {"peers": []}


async def start_relay(
    nursery: trio.Nursery, network_id: int = 21338, ledger: int | None = None
) -> tuple[FakeRippled, Hub]:
    """A FakeRippled on ``network_id`` and a hub relaying it, both links up; with
    ``ledger``, that ledger published upstream and relayed."""
    fake = FakeRippled(network_id=network_id)
    await fake.start(nursery)
    relay = await start_hub(nursery, make_config(source={"source": f"upstream:{fake.url}"}))
    await eventually(lambda: relay.node.upstream is not None and relay.node.upstream.connected)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    if ledger is not None:
        await fake.hub.publish(ledger_closed(ledger))
        await eventually(lambda: relay.node.ledger.index == ledger)
    return fake, relay
