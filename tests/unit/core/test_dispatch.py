"""The method table: resolved by version like the version table, one definition per version."""

from __future__ import annotations

from typing import Any

import pytest

from hub.core.dispatch import Call, Methods
from hub.wire.errors import RPCError


def test_methods_registry_resolves_like_the_table() -> None:
    async def h0(call: Call) -> Any:
        return 0

    async def h2(call: Call) -> Any:
        return 2

    table = Methods()
    table.register("m")(h0)
    table.register("m", since=2)(h2)
    assert table.lookup("m", 1).handler is h0
    assert table.lookup("m", 2).handler is h2
    assert table.lookup("m", 3).handler is h2
    table.register("m", since=3)(h0)  # a later definition replaces what was looked up
    assert table.lookup("m", 3).handler is h0
    assert table.lookup("m", 2).handler is h2
    with pytest.raises(RPCError) as info:
        table.lookup("absent", 1)
    assert info.value.token == "unknownCmd"
    assert info.value.code == 32


def test_methods_register_twice_at_one_version_is_refused() -> None:
    async def h(call: Call) -> Any:
        return None

    table = Methods()
    table.register("m", since=1)(h)
    with pytest.raises(ValueError, match="already defined"):
        table.register("m", since=1)(h)
