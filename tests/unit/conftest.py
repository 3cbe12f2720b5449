"""Every test under tests/unit runs with :data:`tests.helpers.isolation.GUARD` armed: no
socket, no name lookup, no process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.isolation import GUARD


@pytest.fixture(autouse=True)
def no_io() -> Iterator[None]:
    GUARD.take()
    GUARD.armed = True
    try:
        yield
    finally:
        GUARD.armed = False
    refused = GUARD.take()
    if refused:
        pytest.fail("I/O in a unit test: " + "; ".join(refused), pytrace=False)
