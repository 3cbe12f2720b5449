"""A rolling restart on one port: hub A drains while hub B, with the same history and
one ledger more, takes its port (``SO_REUSEPORT``)."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from hub import Hub
from hub.app.workers import reuse_port_listener
from hub.wire.envelope import resume_hint
from tests.helpers.hubs import eventually, make_config, websocket
from tests.helpers.samples import ALICE, BOB, ledger_closed, xrp_payment

HISTORY: list[dict[str, Any]] = [
    ledger_closed(5, txn_count=1),
    xrp_payment(5, 0, ALICE, BOB),
    ledger_closed(6, txn_count=1),
    xrp_payment(6, 0, BOB, ALICE),
]
NEXT: list[dict[str, Any]] = [ledger_closed(7, txn_count=1), xrp_payment(7, 0, ALICE, BOB)]


async def first_hub(nursery: trio.Nursery) -> Hub:
    """Hub A, on a port a successor can share (SO_REUSEPORT, as in a rolling restart)."""
    node = Hub(make_config(server={"drain_seconds": 0, "drain_spread": 0}))
    listener = reuse_port_listener("127.0.0.1", 0)
    await nursery.start(partial(node.run, listeners=[listener]))
    return node


async def drain_into_a_successor(nursery: trio.Nursery, first: Hub) -> tuple[int, Hub]:
    """Hub A drains; hub B takes its port with the same history and ledger 7 more.

    Returns the ``since_ledger`` of A's close reason, as a plain client of A saw it, and B.
    """
    port = first.port
    assert port is not None
    async with websocket(first.url) as witness:  # before B listens: surely on A
        await witness.send_message('{"command": "ping"}')
        await witness.get_message()
        second = Hub(make_config())
        for message in HISTORY + NEXT:
            await second.publish(message)
        listener = reuse_port_listener("127.0.0.1", port)
        await nursery.start(partial(second.run, listeners=[listener]))
        await eventually(lambda: second.node.history.latest == 7)
        first.shutdown()
        with trio.fail_after(5):
            code, reason = await _close_of(witness)
    assert code == 1001
    hint = resume_hint(reason)
    assert hint is not None
    return hint, second


async def _close_of(ws: Any) -> tuple[int, str]:
    try:
        while True:
            await ws.get_message()
    except ConnectionClosed as exc:
        return exc.reason.code, exc.reason.reason or ""
