"""Workers without processes: who runs the source, the pipe bus, restart backoff."""

from __future__ import annotations

import trio
import trio.testing

from hub.app.workers import Restarts, assignments
from hub.cluster.pipe import FrameReader, frame
from hub.cluster.pipebus import PipeBus
from hub.xrpl import events
from tests.helpers.hubs import make_config
from tests.helpers.samples import ledger_closed, xrp_payment


def test_with_a_broker_only_worker_0_runs_the_source() -> None:
    cfg = make_config(
        source={"source": "simulator"}, cluster={"broker": "redis://h:1/0", "workers": 3}
    )
    plans = assignments(cfg, 4321)
    assert [p.config["source"]["source"] for p in plans] == ["simulator", "none", "none"]
    assert all(p.config["server"]["port"] == 4321 for p in plans)
    assert all(p.config["cluster"]["workers"] == 1 and not p.pipe for p in plans)


def test_without_a_broker_the_parent_runs_the_source() -> None:
    cfg = make_config(source={"source": "upstream:ws://a:1, ws://b:2"}, cluster={"workers": 2})
    plans = assignments(cfg, 4321)
    assert [p.config["source"]["source"] for p in plans] == ["none", "none"]
    assert all(p.pipe for p in plans)
    assert plans[1].upstream == ["ws://a:1", "ws://b:2"]


async def test_pipe_bus_sends_up_and_applies_only_what_comes_down() -> None:
    up_send, up_receive = trio.testing.memory_stream_one_way_pair()
    down_send, down_receive = trio.testing.memory_stream_one_way_pair()
    closed = trio.Event()
    bus = PipeBus(up_send, down_receive, FrameReader(), closed.set)
    applied: list[events.Event] = []
    remembered: list[events.Event] = []
    mine = events.parse(ledger_closed(5))
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run, applied.append, remembered.append)
        await bus.submit([mine])
        assert applied == []
        reader = FrameReader()
        assert reader.feed(await up_receive.receive_some()) == [[mine.body]]
        await down_send.send_all(frame([mine.body, {"type": "bogus"}, xrp_payment(5, 1)]))
        await down_send.aclose()
        await closed.wait()
    assert [e.kind for e in applied] == ["ledgerClosed", "transaction"]
    assert remembered == []  # a worker's parent sends only live events
    assert bus.status.as_json()["rejected"] == 1


def test_restarts_back_off_while_a_worker_keeps_dying_soon() -> None:
    restarts = Restarts(initial=0.5, maximum=4.0, settled=30.0)
    assert [restarts.died(1.0) for _ in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert restarts.died(30.0) == 0.0  # it had run a while: at once again
    assert restarts.died(0.1) == 0.5
