"""The CTID codec against rippled's own vectors (``src/test/rpc/Transaction_test.cpp``,
``testCTIDValidation``; ``testBinaryRequest`` for a CTID rippled returned)."""

from __future__ import annotations

import pytest

from hub.xrpl import ctid


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((0x0FFF_FFFF, 0xFFFF, 0xFFFF), "CFFFFFFFFFFFFFFF"),
        ((0, 0, 0), "C000000000000000"),
        ((1, 2, 3), "C000000100020003"),
        ((13249191, 12911, 65535), "C0CA2AA7326FFFFF"),
        ((3, 3, 0), "C000000300030000"),  # ledger 3, index 3 on network 0 (testBinaryRequest)
    ],
)
def test_encode_matches_rippled(parts: tuple[int, int, int], expected: str) -> None:
    assert ctid.encode(*parts) == expected


@pytest.mark.parametrize(
    "parts",
    [
        (0x1000_0000, 0xFFFF, 0xFFFF),  # ledger sequence over 28 bits
        (0x0FFF_FFFF, 0x1_0000, 0xFFFF),  # transaction index over 16 bits
        (0x0FFF_FFFF, 0xFFFF, 0x1_0000),  # network ID over 16 bits (testCTIDRPC's 65536)
        (-1, 0, 0),
        (True, 0, 0),
    ],
)
def test_encode_refuses_what_does_not_fit(parts: tuple[int, int, int]) -> None:
    assert ctid.encode(*parts) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C000000000000000", (0, 0, 0)),
        ("C000000100020003", (1, 2, 3)),
        ("C0CA2AA7326FC045", (13249191, 12911, 49221)),
        ("c0ca2aa7326fc045", (13249191, 12911, 49221)),
        (0xCFFF_FFFF_FFFF_FFFF, (0x0FFF_FFFF, 0xFFFF, 0xFFFF)),
        (0xC000_0000_0000_0000, (0, 0, 0)),
        (0xC000_0001_0002_0003, (1, 2, 3)),
        (0xC0CA_2AA7_326F_C045, (13249191, 12911, 49221)),
    ],
)
def test_decode_matches_rippled(value: str | int, expected: tuple[int, int, int]) -> None:
    assert ctid.decode(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0xCFF,  # an integer that is not 16 nibbles
        "C003FFFFFFFFFFFG",  # not hexadecimal
        "C003FFFFFFFFFFF",  # 15 nibbles
        "CFFFFFFFFFFFFFFFF",  # 17 nibbles
        "FFFFFFFFFFFFFFFF",  # no leading C
        0xC003_FFFF_FFFF_FFF,
        0xFFFF_FFFF_FFFF_FFFF,
        1 << 64 | 0xC000_0000_0000_0000,
        None,
        3.5,
    ],
)
def test_decode_refuses_what_is_not_a_ctid(value: object) -> None:
    assert ctid.decode(value) is None  # type: ignore[arg-type]


def test_round_trip() -> None:
    for parts in ((90_000_123, 7, 0), (1, 0xFFFF, 21338), (0x0FFF_FFFF, 0, 1)):
        encoded = ctid.encode(*parts)
        assert encoded is not None
        assert ctid.decode(encoded) == parts
