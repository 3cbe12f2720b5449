"""A hub started without a broker runs without one."""

from __future__ import annotations

import trio

from tests.helpers.hubs import start_hub


async def test_a_hub_without_broker_has_none(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    assert node.node.bus is None
    node.shutdown()
