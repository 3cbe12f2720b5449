"""Lanes: one heavy request at a time per client."""

from __future__ import annotations

import trio

from hub.core.lanes import Lanes


async def test_one_lane_per_client_runs_one_heavy_request_at_a_time() -> None:
    lanes = Lanes()
    order: list[str] = []

    async def heavy(key: str, name: str) -> None:
        async with lanes.lane(key):
            for step in range(3):
                order.append(f"{name}{step}")
                await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(heavy, "10.0.0.1", "a")
        nursery.start_soon(heavy, "10.0.0.1", "b")
        nursery.start_soon(heavy, "10.0.0.2", "c")
    mine = [step for step in order if step[0] in "ab"]
    assert mine in (["a0", "a1", "a2", "b0", "b1", "b2"], ["b0", "b1", "b2", "a0", "a1", "a2"])
    assert order.index("c1") < max(order.index("a2"), order.index("b2")), "others interleave"
    assert len(lanes) == 0, "a lane is forgotten once nobody holds or waits for it"
