"""The simulator beyond ledgers: proposed transactions, consensus phases, serverStatus
and its network ID."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from hub.sources.rounds import LOAD_BASE, ServerLoad, consensus_phase, run_simulator
from hub.sources.simulator import RIPPLE_EPOCH_OFFSET, LedgerSimulator
from hub.xrpl import ctid, events


def test_proposing_first_changes_no_ledger() -> None:
    plain, proposing = LedgerSimulator(seed=8), LedgerSimulator(seed=8)
    for _ in range(5):
        proposed = proposing.propose()
        assert proposing.propose() == []  # each transaction is proposed once
        closed = proposing.close_ledger()
        assert closed == plain.close_ledger()
        validated = [m for m in closed if m["type"] == "transaction"]
        assert [m["hash"] for m in proposed] == [m["hash"] for m in validated]


def test_proposed_transactions_have_rippleds_shape() -> None:
    sim = LedgerSimulator(seed=9, tx_per_ledger=30)
    proposed = sim.propose()
    assert proposed
    for message in proposed:
        assert message["validated"] is False
        assert message["status"] == "proposed"
        assert message["ledger_current_index"] == sim.ledger_index
        assert "meta" not in message
        assert "ctid" not in message
        assert "ledger_index" not in message
        assert "date" not in message["tx_json"]
        assert list(message) == sorted(message)
        event = events.parse(message)
        assert not event.validated
        assert message["tx_json"]["Account"] in event.accounts
    offers = [m for m in proposed if m["tx_json"]["TransactionType"] == "OfferCreate"]
    assert any("owner_funds" in m["tx_json"] for m in offers)


def test_network_id_reaches_every_message() -> None:
    sim = LedgerSimulator(seed=4, network_id=21338)
    messages = sim.close_ledger()
    closed = next(m for m in messages if m["type"] == "ledgerClosed")
    assert closed["network_id"] == 21338
    assert all(m["network_id"] == 21338 for m in messages if m["type"] == "validationReceived")
    for tx in (m for m in messages if m["type"] == "transaction"):
        expected = (tx["ledger_index"], tx["meta"]["TransactionIndex"], 21338)
        assert ctid.decode(tx["ctid"]) == expected


def test_a_network_id_beyond_16_bits_means_no_ctid() -> None:
    messages = LedgerSimulator(seed=4, network_id=70000).close_ledger()
    assert all("ctid" not in m for m in messages if m["type"] == "transaction")
    with pytest.raises(ValueError, match="network_id"):
        LedgerSimulator(network_id=-1)


def test_server_load_is_deterministic_and_changes() -> None:
    first, second = ServerLoad(3), ServerLoad(3)
    steps = [first.step() for _ in range(400)]
    assert steps == [second.step() for _ in range(400)]
    assert steps[0] is not None
    assert steps[0]["load_factor"] == LOAD_BASE
    assert steps[0]["server_status"] == "full"
    sent = [s for s in steps if s is not None]
    assert len(sent) > 4  # spikes come and go
    assert any(s["load_factor"] > LOAD_BASE for s in sent)
    assert all(s["load_factor"] == s["load_factor_server"] for s in sent)
    assert all(events.parse(s).kind == "serverStatus" for s in sent)
    # Only changes are sent.
    factors = [s["load_factor"] for s in sent]
    assert all(a != b for a, b in itertools.pairwise(factors))


def test_consensus_phases() -> None:
    assert consensus_phase("establish") == {"consensus": "establish", "type": "consensusPhase"}
    with pytest.raises(ValueError, match="phase"):
        consensus_phase("closing")


async def test_run_simulator_follows_a_consensus_round(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](0)
    twin = LedgerSimulator(seed=5, tx_per_ledger=3)
    sim = LedgerSimulator(seed=5, tx_per_ledger=3)
    wall = 1_767_225_600.0
    got: list[tuple[float, dict[str, Any]]] = []
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        runner = partial(
            run_simulator,
            send,
            interval=4.0,
            sim=sim,
            wall_clock=lambda: wall,
            proposed=True,
            consensus=True,
            load=ServerLoad(1),
        )
        await nursery.start(runner)
        while sum(m["type"] == "ledgerClosed" for _, m in got) < 2:
            message = await receive.receive()
            got.append((trio.current_time() - start, message))
        nursery.cancel_scope.cancel()
    kinds = [m["type"] for _, m in got]
    assert kinds[:2] == ["consensusPhase", "serverStatus"]
    first_close = twin.close_ledger(int(wall) - RIPPLE_EPOCH_OFFSET)
    proposed = [(t, m) for t, m in got if m["type"] == "transaction" and not m["validated"]]
    assert [m["hash"] for t, m in proposed[: len(first_close) - 7]] == [
        m["hash"] for m in first_close if m["type"] == "transaction"
    ]
    first_proposed = proposed[: len(first_close) - 7]
    assert first_proposed
    assert all(t == pytest.approx(2.0) for t, _ in first_proposed)
    phases = [(t, m["consensus"]) for t, m in got if m["type"] == "consensusPhase"]
    assert phases[:4] == [(0, "open"), (3.0, "establish"), (4.0, "accepted"), (4.0, "open")]
    # The ledger's own messages come whole between "accepted" and "open".
    accepted = next(i for i, (_, m) in enumerate(got) if m.get("consensus") == "accepted")
    ledger = [m for _, m in got[accepted + 1 : accepted + 1 + len(first_close)]]
    assert ledger == first_close
    assert got[accepted + 1 + len(first_close)][1] == consensus_phase("open")
