"""Record a live hub, then replay the recording through another."""

from __future__ import annotations

from pathlib import Path

import trio

from hub import Hub
from hub.sources.playback import Playback, read_recording, run_playback
from hub.sources.record import record
from tests.helpers.hubs import make_config, subscriber
from tests.helpers.paths import SAMPLE_RECORDING


async def test_record_then_replay_round_trip(nursery: trio.Nursery, tmp_path: Path) -> None:
    origin = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.05, "seed": 9}))
    await nursery.start(origin.run)
    path = tmp_path / "rec.jsonl"
    with trio.fail_after(20):
        written = await record(origin.url, path, count=60)
    assert written == 60
    recorded = [r.message for r in read_recording(path)]
    replay_hub = Hub(make_config())
    await nursery.start(replay_hub.run)
    streams = ["ledger", "transactions", "validations", "book_changes"]
    async with subscriber(replay_hub, streams) as client:
        await nursery.start(run_playback, replay_hub.publisher(), Playback(str(path), speed=0))
        got = [await client.recv() for _ in recorded]
    assert got == recorded


async def test_shipped_sample_replays_through_serve(nursery: trio.Nursery) -> None:
    sample = SAMPLE_RECORDING
    records = read_recording(sample)
    assert len(records) > 50
    kinds = {r.message["type"] for r in records}
    assert {"ledgerClosed", "transaction", "validationReceived"} <= kinds
    node = Hub(make_config(source={"source": f"replay:{sample}", "speed": 0, "loop": True}))
    await nursery.start(node.run)
    async with subscriber(node, ["ledger"]) as client:
        indexes = [(await client.recv())["ledger_index"] for _ in range(3)]
    assert all(isinstance(i, int) for i in indexes)
