"""api_version rules (seed 000) and the newest-at-or-below resolution (seed 003), no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.wire.errors import RPCError
from hub.wire.versions import (
    BETA_VERSION,
    MAX_VERSION,
    MIN_VERSION,
    VersionedTable,
    VersionPolicy,
    newest_at_or_below,
)

# Seed 003: "a command is defined in API versions 0, 2, 3, 7, and 9".
SEED_003 = (0, 2, 3, 7, 9)


def test_seed_003_example_client_at_5_gets_3() -> None:
    assert newest_at_or_below(SEED_003, 5) == 3


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(0, 0), (1, 0), (2, 2), (3, 3), (4, 3), (6, 3), (7, 7), (8, 7), (9, 9), (10, 9), (99, 9)],
)
def test_seed_003_every_version(requested: int, expected: int) -> None:
    assert newest_at_or_below(SEED_003, requested) == expected


def test_below_every_definition_is_none() -> None:
    assert newest_at_or_below(SEED_003, -1) is None
    assert newest_at_or_below((2, 3), 1) is None


def test_no_definitions_is_none() -> None:
    assert newest_at_or_below((), 5) is None


def test_unsorted_input_is_accepted() -> None:
    assert newest_at_or_below((9, 0, 7, 3, 2), 5) == 3
    assert newest_at_or_below(iter([9, 0, 7, 3, 2]), 8) == 7


@given(
    defined=st.sets(st.integers(min_value=-5, max_value=20), max_size=8),
    requested=st.integers(min_value=-10, max_value=30),
)
def test_matches_the_definition_of_the_rule(defined: set[int], requested: int) -> None:
    at_or_below = [v for v in defined if v <= requested]
    assert newest_at_or_below(defined, requested) == (max(at_or_below) if at_or_below else None)


def _seed_table() -> VersionedTable[str]:
    table: VersionedTable[str] = VersionedTable()
    for since in (7, 0, 9, 3, 2):  # registration order must not matter
        table.add("get_roster", since, f"get_roster@{since}")
    table.add("other", 2, "other@2")
    return table


def test_table_resolves_seed_003_example() -> None:
    table = _seed_table()
    assert table.get("get_roster", 5) == "get_roster@3"
    assert table.get("get_roster", 1) == "get_roster@0"
    assert table.get("get_roster", 9) == "get_roster@9"
    assert table.get("get_roster", 100) == "get_roster@9"


def test_table_below_all_definitions_is_none() -> None:
    table = _seed_table()
    assert table.get("other", 1) is None
    assert table.get("other", 2) == "other@2"
    assert table.get("get_roster", -1) is None


def test_table_unknown_name_is_none() -> None:
    assert _seed_table().get("nope", 5) is None


def test_table_names_and_contains() -> None:
    table = _seed_table()
    assert table.names() == ["get_roster", "other"]
    assert "get_roster" in table
    assert "nope" not in table


def test_table_rejects_a_duplicate_definition() -> None:
    table = _seed_table()
    with pytest.raises(ValueError, match="already defined at version 3"):
        table.add("get_roster", 3, "again")
    assert table.get("get_roster", 3) == "get_roster@3"


def test_supported_range_constants() -> None:
    assert (MIN_VERSION, MAX_VERSION, BETA_VERSION) == (1, 2, 3)


def test_policy_defaults() -> None:
    policy = VersionPolicy()
    assert policy.default == 1
    assert (policy.first, policy.last) == (1, 2)
    assert policy.resolve(None, given=False) == 1


def test_operator_default_2() -> None:
    assert VersionPolicy(default=2).resolve(None, given=False) == 2


def test_beta_extends_the_range_to_3() -> None:
    policy = VersionPolicy(beta=True)
    assert (policy.first, policy.last) == (1, 3)
    assert policy.resolve(3) == 3


@pytest.mark.parametrize("version", [1, 2])
def test_supported_versions_resolve_to_themselves(version: int) -> None:
    assert VersionPolicy().resolve(version) == version
    assert VersionPolicy(beta=True).resolve(version) == version


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("2", "integer"),
        (2.0, "integer"),
        (True, "integer"),
        (False, "integer"),
        (None, "integer"),
        ([2], "integer"),
        ({"v": 2}, "integer"),
        (0, "lower than minimum supported (1)"),
        (-1, "lower than minimum supported (1)"),
        (3, "higher than maximum supported (2)"),
        (4, "higher than maximum supported (2)"),
        (2**70, "higher than maximum supported (2)"),
    ],
)
def test_invalid_versions(raw: object, fragment: str) -> None:
    with pytest.raises(RPCError) as info:
        VersionPolicy().resolve(raw)
    assert info.value.token == "invalid_API_version"
    assert info.value.code == 6000
    assert fragment in info.value.message


def test_beta_still_rejects_4() -> None:
    with pytest.raises(RPCError) as info:
        VersionPolicy(beta=True).resolve(4)
    assert "higher than maximum supported (3)" in info.value.message


def test_explicit_null_is_not_the_same_as_absent() -> None:
    """``"api_version": null`` was given, so it must be an integer; only absence defaults."""
    with pytest.raises(RPCError):
        VersionPolicy().resolve(None, given=True)


@pytest.mark.parametrize(("default", "beta"), [(0, False), (3, False), (4, True)])
def test_policy_refuses_a_default_outside_the_range(default: int, beta: bool) -> None:
    with pytest.raises(ValueError, match="outside"):
        VersionPolicy(default=default, beta=beta)


def test_beta_allows_default_3() -> None:
    assert VersionPolicy(default=3, beta=True).resolve(None, given=False) == 3
