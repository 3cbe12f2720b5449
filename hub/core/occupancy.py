"""Open sockets counted from accept to close, for the connection limits.

A socket counts from the moment it is accepted, not from the end of its handshake:
otherwise one address could hold any number of sockets that never finish one (each
dropped only after ``[server] handshake_timeout``) and run the process out of file
descriptors. Every open socket counts in :attr:`Occupancy.total` (``[limits]
max_connections``); each counts under at most one address at a time
(``max_connections_per_ip``), and :meth:`Occupancy.move` changes which as the edge
learns more: the TCP peer at accept, a PROXY header's source, then the client the
request head names. A socket under no address (``None``: a trusted proxy's before its
client is known, an admin's) counts in the total only.

No socket, no clock: the edge asks and acts (:mod:`hub.edge.server`).
"""

from __future__ import annotations

from collections import Counter


class Slot:
    """One open socket's place in the counts; :meth:`Occupancy.close` ends it."""

    __slots__ = ("address", "open")

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.open = True


class Occupancy:
    """Counts of open sockets: in all, and per address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._per_address: Counter[str] = Counter()

    def open(self, address: str | None) -> Slot:
        """Count a socket just accepted, under ``address`` (None: under none)."""
        self.total += 1
        slot = Slot(None)
        self.move(slot, address)
        return slot

    def move(self, slot: Slot, address: str | None) -> None:
        """Count ``slot`` under ``address`` instead; it stays one socket in the total."""
        if not slot.open or slot.address == address:
            return
        self._uncount(slot)
        slot.address = address
        if address is not None:
            self._per_address[address] += 1

    def close(self, slot: Slot) -> None:
        """The socket is gone; closing it again changes nothing."""
        if not slot.open:
            return
        self._uncount(slot)
        slot.open = False
        self.total -= 1

    def count(self, address: str) -> int:
        """Open sockets counted under ``address``."""
        return self._per_address.get(address, 0)

    def crowded(self, address: str | None) -> bool:
        """Whether ``address`` holds more sockets than ``max_per_address`` (the one
        asking included); never for None."""
        return address is not None and self.count(address) > self.max_per_address

    def full(self) -> bool:
        """Whether more sockets are open than ``max_total`` (the one asking included)."""
        return self.total > self.max_total

    @property
    def addresses(self) -> int:
        """Addresses with a socket counted under them."""
        return len(self._per_address)

    def _uncount(self, slot: Slot) -> None:
        address = slot.address
        if address is None:
            return
        left = self._per_address[address] - 1
        if left:
            self._per_address[address] = left
        else:
            del self._per_address[address]
