"""The simulator's ledger state: rippled's quality encoding, its key order, and the
AffectedNodes a transaction's changes produce."""

from __future__ import annotations

from hub.sources.simstate import AccountRoot, Changes, quality_hex, sorted_keys
from tests.helpers.samples import ALICE, BOB


def test_quality_is_rippleds_64_bit_encoding() -> None:
    assert quality_hex(1, 1) == "55038D7EA4C68000"  # rate 1: exponent -15, 10**15
    assert quality_hex(2, 1) == "55071AFD498D0000"
    assert quality_hex(1, 2) == "5411C37937E08000"
    assert int(quality_hex(3, 1000), 16) < int(quality_hex(1, 1), 16)


def test_keys_are_ordered_at_every_depth() -> None:
    assert list(sorted_keys({"b": 1, "a": {"d": [{"z": 0, "y": 0}], "c": 2}})) == ["a", "b"]
    nested = sorted_keys({"b": 1, "a": {"d": [{"z": 0, "y": 0}], "c": 2}})
    assert list(nested["a"]) == ["c", "d"]
    assert list(nested["a"]["d"][0]) == ["y", "z"]


def test_changes_become_created_modified_and_deleted_nodes() -> None:
    alice = AccountRoot("A" * 64, ALICE, balance=1000, sequence=5)
    bob = AccountRoot("B" * 64, BOB, balance=50, sequence=1)
    gone = AccountRoot("C" * 64, BOB, balance=0, sequence=9)
    changes = Changes()
    changes.touch(alice)
    alice.balance, alice.sequence = 988, 6
    changes.create(bob)
    changes.delete(gone)
    nodes = changes.affected_nodes("F" * 64, 7)
    created, modified, deleted = (
        next(n[kind] for n in nodes if kind in n)
        for kind in ("CreatedNode", "ModifiedNode", "DeletedNode")
    )
    assert created["NewFields"] == {"Account": BOB, "Balance": "50", "Sequence": 1}
    assert modified["PreviousFields"] == {"Balance": "1000", "Sequence": 5}
    assert modified["FinalFields"]["Balance"] == "988"
    assert "PreviousFields" not in deleted
    assert [n["LedgerIndex"] for node in nodes for n in node.values()] == sorted(
        ["A" * 64, "B" * 64, "C" * 64]
    )
    assert (alice.prev_txn_id, alice.prev_txn_lgr) == ("F" * 64, 7)  # threaded onwards
