"""What the simulator sends besides ledgers: ``consensusPhase`` and ``serverStatus``.

rippled publishes ``consensusPhase`` (``pubConsensus``) each time its consensus round
moves between ``open``, ``establish`` and ``accepted``, and ``serverStatus``
(``pubServer``) when its operating mode or fee levels change. The simulator moves
through the phases once per ledger and simulates a server whose load factor now and
then rises for a few ledgers (local load raising ``load_factor_server``), so both
streams carry something. Sans-IO; :func:`hub.sources.simulator.run_simulator` sends
them at their moments.
"""

from __future__ import annotations

import random
from typing import Any, Final

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
