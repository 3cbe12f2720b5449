"""The simulator's rounds: a ledger each interval, and what rippled sends around it.

rippled publishes ``consensusPhase`` (``pubConsensus``) each time its consensus round
moves between ``open``, ``establish`` and ``accepted``, and ``serverStatus``
(``pubServer``) when its operating mode or fee levels change. The simulator moves
through the phases once per ledger and simulates a server whose load factor now and
then rises for a few ledgers (local load raising ``load_factor_server``), so both
streams carry something. :func:`run_simulator` is the one task: it closes a ledger of a
:class:`~hub.sources.simulator.LedgerSimulator` every interval and sends each message
at its moment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import trio

from hub.xrpl.ledgerdata import RIPPLE_EPOCH_OFFSET

if TYPE_CHECKING:
    from hub.sources.simulator import LedgerSimulator

LOAD_BASE: Final = 256
"""rippled's fee-track unit: a load factor of 256 is no extra load."""
BASE_FEE: Final = 10
PHASES: Final = ("open", "establish", "accepted")
_SPIKE_START: Final = 0.05
"""Chance per ledger that a quiet server becomes loaded (one ledger in twenty)."""
_SPIKE_END: Final = 1 / 3
_SPIKE_FACTORS: Final = (2, 4, 8)


def consensus_phase(phase: str) -> dict[str, Any]:
    """A ``consensusPhase`` message, as rippled's pubConsensus writes it."""
    if phase not in PHASES:
        raise ValueError(f"unknown consensus phase {phase!r}")
    return {"consensus": phase, "type": "consensusPhase"}


class ServerLoad:
    """The simulated server's load, one :meth:`step` per ledger.

    Deterministic for a seed, and drawn from its own random stream so that turning it
    on changes none of the ledgers the simulator produces.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:server-load")
        self.factor = LOAD_BASE
        self._told = False

    def step(self) -> dict[str, Any] | None:
        """Advance one ledger: the ``serverStatus`` message when something changed
        (always the first time, so a new subscriber's feed starts with one)."""
        changed = not self._told
        self._told = True
        if self.factor == LOAD_BASE:
            if self._rng.random() < _SPIKE_START:
                self.factor = LOAD_BASE * self._rng.choice(_SPIKE_FACTORS)
                changed = True
        elif self._rng.random() < _SPIKE_END:
            self.factor = LOAD_BASE
            changed = True
        return self.message() if changed else None

    def message(self) -> dict[str, Any]:
        """rippled's ``serverStatus`` with the fee-escalation figures at their reference
        level (the simulated open ledger is never full)."""
        return {
            "base_fee": BASE_FEE,
            "load_base": LOAD_BASE,
            "load_factor": self.factor,
            "load_factor_fee_escalation": LOAD_BASE,
            "load_factor_fee_queue": LOAD_BASE,
            "load_factor_fee_reference": LOAD_BASE,
            "load_factor_server": self.factor,
            "server_status": "full",
            "type": "serverStatus",
        }


async def run_simulator(
    send: trio.MemorySendChannel[dict[str, Any]],
    *,
    interval: float = 3.5,
    sim: LedgerSimulator,
    wall_clock: Callable[[], float] = time.time,
    proposed: bool = False,
    consensus: bool = False,
    load: ServerLoad | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Close a ledger every ``interval`` seconds and send its messages in order.

    Ticks are scheduled against absolute deadlines on trio's clock so they do
    not drift.  If the consumer stalls past a deadline the schedule restarts
    from now rather than bursting to catch up: a simulated network does not
    close ledgers faster to make up for lost time.  ``close_time`` is the
    Ripple-epoch wall time (``wall_clock``, injectable for tests).

    Optional, as a rippled round goes: ``proposed`` sends the coming ledger's
    transactions unvalidated halfway through the interval; ``consensus`` sends
    ``establish`` three quarters through, ``accepted`` just before the ledger's
    messages and ``open`` after them (and once at the start); ``load`` sends a
    ``serverStatus`` at the start and after each ledger that changed it.
    """
    task_status.started()
    deadline = trio.current_time()
    for message in (
        consensus_phase("open") if consensus else None,
        load.step() if load else None,
    ):
        if message is not None:
            await send.send(message)
    while True:
        deadline += interval
        if proposed:
            await trio.sleep_until(deadline - interval / 2)
            for message in sim.propose():
                await send.send(message)
        if consensus:
            await trio.sleep_until(deadline - interval / 4)
            await send.send(consensus_phase("establish"))
        await trio.sleep_until(deadline)
        close_time = int(wall_clock()) - RIPPLE_EPOCH_OFFSET
        closing = sim.close_ledger(close_time)
        if consensus:
            closing = [consensus_phase("accepted"), *closing, consensus_phase("open")]
        status = load.step() if load else None
        for message in closing if status is None else [*closing, status]:
            await send.send(message)
        deadline = max(deadline, trio.current_time() - interval)
