"""The broker's arithmetic without Redis: merging streams by sequence, resume points, keys
and entries."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hub.cluster.broker import (
    Keys,
    decode_entry,
    encode_entry,
    merge,
    redacted,
    resume,
    seq_of,
)
from hub.xrpl import events
from tests.helpers.samples import xrp_payment


def _reply(**streams: Sequence[int]) -> dict[str, list[tuple[bytes, bytes]]]:
    return {
        name: [(f"{seq}-0".encode(), b"%d" % seq) for seq in seqs] for name, seqs in streams.items()
    }


def test_merge_orders_entries_of_all_streams_by_sequence() -> None:
    entries = merge(_reply(a=[1, 4, 5], b=[2, 3], c=[]), count=10)
    assert [entry.seq for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[0].payload == b"1"


def test_merge_holds_back_entries_past_a_stream_cut_short() -> None:
    # Stream a returned COUNT entries: it may hold 4 and 5 unread, so b's 6 must wait.
    entries = merge(_reply(a=[1, 2, 3], b=[6]), count=3)
    assert [entry.seq for entry in entries] == [1, 2, 3]
    entries = merge(_reply(a=[1, 2, 3], b=[4, 9], c=[5, 6, 7]), count=3)
    assert [entry.seq for entry in entries] == [1, 2, 3]


def test_resume_after_each_kind_of_reconnection() -> None:
    assert resume(None, 0, "e1", 40) == (40, "start")
    assert resume("e1", 40, "e1", 55) == (40, "resume")
    assert resume("e1", 40, "e2", 3)[0] == 0
    assert resume("e1", 40, "e1", 12)[0] == 12


def test_keys_share_one_cluster_slot_and_cover_every_kind() -> None:
    keys = Keys("prod")
    assert keys.seq == "{prod}:seq"
    assert keys.stream("transaction") == "{prod}:events:transaction"
    assert keys.writer("n1") == "{prod}:writer:n1"
    assert len(keys.streams()) == len(events.KINDS)
    assert all(name.startswith("{prod}:") for name in keys.streams())


def test_entries_round_trip_in_v2_form() -> None:
    v1 = xrp_payment(7, 1)
    v1["transaction"] = {**v1.pop("tx_json"), "hash": v1.pop("hash")}
    event = events.parse(v1)
    back = decode_entry(encode_entry(event))
    assert back.body == event.body
    assert back.accounts == event.accounts
    assert "tx_json" in back.body
    with pytest.raises(events.EventError):
        decode_entry(b"{not json")
    with pytest.raises(events.EventError):
        decode_entry(b'{"type": "nothing"}')


def test_seq_of_and_redacted_url() -> None:
    assert seq_of(b"17-0") == 17
    assert seq_of("3-0") == 3
    assert redacted("redis://:secret@db:6379/1") == "redis://:***@db:6379/1"
    assert redacted("redis://db:6379/0") == "redis://db:6379/0"
