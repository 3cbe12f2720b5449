"""The keepalive rule and its deadlines, without sockets."""

from __future__ import annotations

from tests.helpers.hubs import make_config


def test_default_intervals() -> None:
    server = make_config().server
    assert (server.ping_interval, server.ping_timeout) == (30.0, 30.0)


def test_keepalive_rule_pings_after_silence_and_times_out_unanswered() -> None:
    from hub.edge.keepalive import Keepalive, Step

    alive = Keepalive(interval=5.0, timeout=3.0, now=100.0)
    assert alive.step(101.0) == (Step.WAIT, 105.0)
    alive.hear(102.0)  # traffic moves the ping later
    assert alive.step(105.0) == (Step.WAIT, 107.0)
    assert alive.step(107.0) == (Step.PING, 110.0)
    assert alive.step(109.0) == (Step.WAIT, 110.0)
    assert alive.step(110.0) == (Step.TIMEOUT, 110.0)


def test_keepalive_rule_an_answer_clears_the_ping() -> None:
    from hub.edge.keepalive import Keepalive, Step

    alive = Keepalive(interval=5.0, timeout=3.0, now=0.0)
    assert alive.step(5.0) == (Step.PING, 8.0)
    alive.hear(6.0)  # the pong
    assert alive.step(8.0) == (Step.WAIT, 11.0)
    assert alive.step(11.0) == (Step.PING, 14.0)


def test_deadlines_pop_in_order_and_forget_discarded_items() -> None:
    from hub.edge.keepalive import Deadlines

    heap: Deadlines[str] = Deadlines()
    assert heap.add(5.0, "b") is True
    assert heap.add(7.0, "c") is False
    assert heap.add(1.0, "a") is True
    assert heap.next_due == 1.0
    heap.discard("c")
    assert len(heap) == 2
    assert heap.pop_due(4.0) == ["a"]
    assert heap.pop_due(10.0) == ["b"]
    assert len(heap) == 0
    assert heap.next_due is None


def test_deadlines_compact_when_half_are_gone() -> None:
    from hub.edge.keepalive import Deadlines

    heap: Deadlines[int] = Deadlines()
    for i in range(10):
        heap.add(float(i), i)
    for i in range(6):
        heap.discard(i)
    assert len(heap) == 4
    assert heap.next_due == 6.0  # rebuilt without the discarded ones
    assert heap.pop_due(100.0) == [6, 7, 8, 9]
