"""Is this node fit to serve? Ledger freshness with an injected clock, and what follows.

A node is *stale* once ``max_ledger_age`` seconds pass without a new ``ledgerClosed``.
Until its first ledger the clock runs from the moment it started serving, so a fresh
node gets that long as a startup grace and a node that never sees a ledger turns stale
like one whose source stopped. The age is measured on receipt (the hub's own clock),
not from the ledger's ``ledger_time``, so a source with a skewed clock cannot fake it.

Stale, every reply carries Clio's warning 2002 and ``GET /health`` answers 503, so a
load balancer takes the node out; the next ledger puts it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from hub.wire.envelope import Extras, Warning

OUT_OF_DATE: Final = Warning(id=2002, message="This server may be out of date")
STALE: Final = Extras(warnings=(OUT_OF_DATE,))
STALE_LOAD: Final = Extras(warning="load", warnings=(OUT_OF_DATE,))


class Health:
    """Serving or not, and how old the latest ledger is; pure state and a clock."""

    def __init__(self, max_ledger_age: float, clock: Callable[[], float]) -> None:
        self.max_ledger_age = max_ledger_age
        self._clock = clock
        self.serving = False
        self.draining = False
        self._since: float | None = None
        self._ledger_at: float | None = None

    def start(self) -> None:
        """The node accepts clients from now on; the startup grace begins."""
        self.serving = True
        self._since = self._clock()

    def drain(self) -> None:
        """The node is shutting down: unhealthy at once, so load balancers move on."""
        self.draining = True

    def stop(self) -> None:
        self.serving = False

    def ledger_seen(self) -> None:
        self._ledger_at = self._clock()

    def ledger_age(self) -> float | None:
        """Seconds since the latest ledger arrived; None before the first one."""
        return None if self._ledger_at is None else self._clock() - self._ledger_at

    def stale(self, now: float | None = None) -> bool:
        """No ledger for ``max_ledger_age`` seconds (from startup until the first one);
        ``now`` is the caller's reading of the clock, if it has one."""
        reference = self._ledger_at if self._ledger_at is not None else self._since
        if reference is None:
            return False
        return (self._clock() if now is None else now) - reference >= self.max_ledger_age

    def healthy(self) -> bool:
        return self.serving and not self.draining and not self.stale()

    def report(self) -> dict[str, Any]:
        """The body of ``GET /health``."""
        age = self.ledger_age()
        if not self.serving:
            status = "stopped"
        elif self.draining:
            status = "draining"
        elif self.stale():
            status = "stale"
        else:
            status = "ok"
        return {
            "status": status,
            "ledger_age": None if age is None else round(age, 3),
            "max_ledger_age": self.max_ledger_age,
        }
