"""A clock for sans-IO code that takes one: it reads ``now``, which the test sets."""

from __future__ import annotations


class ManualClock:
    """Called, it returns :attr:`now`; time passes only when the test moves it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
