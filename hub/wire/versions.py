"""API version rules: the supported range, the default, beta, and ejabberd's resolution.

rippled supports versions 1 and 2 (3 behind ``beta_api``), uses 1 when a request names
none, and rejects anything that is not a JSON integer in range (XRPL docs, "HTTP /
WebSocket APIs": https://xrpl.org/docs/references/http-websocket-apis). A method
declares each version at which its definition changed; a request at version N runs the
newest definition at or below N (ejabberd, "API Versioning":
https://docs.ejabberd.im/developer/ejabberd-api/api_versioning/).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hub.wire.errors import RPCError

MIN_VERSION = 1
MAX_VERSION = 2
BETA_VERSION = 3

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VersionPolicy:
    default: int = MIN_VERSION
    beta: bool = False

    def __post_init__(self) -> None:
        if not self.first <= self.default <= self.last:
            raise ValueError(
                f"default api_version {self.default} is outside {self.first}..{self.last}"
            )

    @property
    def first(self) -> int:
        return MIN_VERSION

    @property
    def last(self) -> int:
        return BETA_VERSION if self.beta else MAX_VERSION

    def resolve(self, raw: object, *, given: bool = True) -> int:
        """The version a request asked for, or the default when it named none.

        ``bool`` is an ``int`` subclass in Python but not an integer in JSON, hence the
        explicit type check.
        """
        if not given:
            return self.default
        if type(raw) is not int:
            raise RPCError("invalid_API_version", "API version must be an integer.")
        if raw > self.last:
            raise RPCError(
                "invalid_API_version",
                f"Requested API version is higher than maximum supported ({self.last}).",
            )
        if raw < self.first:
            raise RPCError(
                "invalid_API_version",
                f"Requested API version is lower than minimum supported ({self.first}).",
            )
        return raw


def newest_at_or_below(defined: Iterable[int], requested: int) -> int | None:
    """ejabberd's rule: of the versions a command is defined at, the newest <= requested."""
    return _newest_in(sorted(defined), requested)


def _newest_in(ordered: list[int], requested: int) -> int | None:
    i = bisect.bisect_right(ordered, requested)
    return ordered[i - 1] if i else None


@dataclass(slots=True)
class VersionedTable(Generic[T]):
    """Definitions by name and by the version each one starts at."""

    _since: dict[str, list[int]] = field(default_factory=dict)
    _defs: dict[tuple[str, int], T] = field(default_factory=dict)

    def add(self, name: str, since: int, definition: T) -> None:
        if (name, since) in self._defs:
            raise ValueError(f"{name!r} is already defined at version {since}")
        bisect.insort(self._since.setdefault(name, []), since)
        self._defs[name, since] = definition

    def get(self, name: str, version: int) -> T | None:
        since = self._since.get(name)
        if since is None:
            return None
        found = _newest_in(since, version)  # add() keeps it sorted
        return None if found is None else self._defs[name, found]

    def names(self) -> list[str]:
        return sorted(self._since)

    def __contains__(self, name: object) -> bool:
        return name in self._since
