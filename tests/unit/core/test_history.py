"""The history of recent ledgers: what it keeps, for how long, and what it knows of the newest."""

from __future__ import annotations

from hub.core.history import History, Tail
from hub.core.render import Renderings
from hub.xrpl import events
from tests.helpers.history import keep
from tests.helpers.samples import (
    ALICE,
    BOB,
    GATEWAY,
    iou_payment,
    ledger_closed,
    proposed,
    published_ledger,
    small_ledger,
    validation,
    xrp_payment,
)


def test_history_knows_the_newest_complete_ledger() -> None:
    history = History()
    assert history.complete_through() is None

    def add(message: dict[str, object]) -> None:
        event = events.parse(message)
        history.add(event, Renderings(event))

    add({**ledger_closed(5), "txn_count": 2})
    assert history.complete_through() == 4
    add(xrp_payment(5, 0))
    assert history.complete_through() == 4
    add(xrp_payment(5, 1))
    assert history.complete_through() == 5
    add({**ledger_closed(6), "txn_count": 0})
    assert history.complete_through() == 6


def test_indexes_leave_with_the_history() -> None:
    history = History(ledgers=2)
    for index in (1, 2, 3):
        keep(history, [ledger_closed(index, 1), xrp_payment(index, 0)])
    gone, kept = ledger_closed(1), ledger_closed(3)
    assert history.closed(1) is None
    assert history.index_of(gone["ledger_hash"]) is None
    assert history.transaction(xrp_payment(1, 0)["hash"]) is None
    assert history.index_of(kept["ledger_hash"]) == 3
    assert history.transaction(xrp_payment(3, 0)["hash"]) is not None
    # Bounded by bytes as well: the oldest ledger leaves whole, indexes included.
    small = History(ledgers=100, max_bytes=3000)
    for index in range(1, 8):
        keep(small, [ledger_closed(index, 1), xrp_payment(index, 0)])
    floor = small.resumable_from
    assert floor is not None
    assert small.closed(floor) is None
    assert small.transaction(xrp_payment(floor, 0)["hash"]) is None
    assert small.closed(7) is not None


def test_tail_says_what_of_the_last_ledger_went_out() -> None:
    history = History()
    assert history.tail() is None
    keep(history, [ledger_closed(5, 3), xrp_payment(5, 0), xrp_payment(5, 1)])
    tail = history.tail()
    assert tail == Tail(5, frozenset({xrp_payment(5, 0)["hash"], xrp_payment(5, 1)["hash"]}),
                        False, False)  # fmt: skip
    keep(history, [xrp_payment(5, 2)])
    tail = history.tail()
    assert tail is not None
    assert tail.complete


def test_the_newest_ledger_bounds_a_resume() -> None:
    history = History(ledgers=3)
    assert history.resumable_to is None
    keep(history, small_ledger(7))
    assert (history.resumable_from, history.resumable_to) == (6, 7)
    keep(history, [validation(8, 0)])  # the next ledger's validation, before its close
    assert history.resumable_to == 7
    huge = History(ledgers=3, max_bytes=5_000)
    keep(huge, [ledger_closed(9, 40), *(xrp_payment(9, s) for s in range(40))])
    assert huge.latest is None  # the one ledger was bigger than max_bytes
    assert huge.resumable_to == huge.resumable_from == 9


def test_history_keeps_the_last_n_ledgers() -> None:
    history = History(ledgers=3)
    assert history.resumable_from is None
    for i in range(10, 16):
        keep(history, published_ledger(i))
    assert history.latest == 15
    assert history.resumable_from == 12
    assert {entry.ledger_index for entry in history.since(0)} == {13, 14, 15}
    assert [e.event.kind for e in history.since(14)] == [
        "validationReceived", "ledgerClosed", "transaction", "transaction", "transaction"
    ]  # fmt: skip


def test_a_kept_transaction_works_its_routes_out_from_its_frame() -> None:
    history = History(ledgers=3)
    keep(history, [ledger_closed(7), iou_payment(7, 1, ALICE, BOB)])
    (entry,) = history.transactions(7)
    assert entry.event.body == {}  # the decoded message is not kept
    assert entry.event.known_routes is None
    assert {ALICE, BOB, GATEWAY} <= entry.event.accounts


def test_history_starts_at_the_first_ledger_seen() -> None:
    history = History(ledgers=10)
    keep(history, published_ledger(50))
    assert history.resumable_from == 49


def test_history_skips_what_belongs_to_no_ledger() -> None:
    history = History(ledgers=10)
    keep(history, published_ledger(5))
    before = len(history)
    keep(history, [proposed(xrp_payment(6, 1)), {"type": "consensusPhase", "consensus": "open"}])
    assert len(history) == before


def test_late_validation_of_an_evicted_ledger_is_not_kept() -> None:
    history = History(ledgers=2)
    for i in range(1, 5):
        keep(history, published_ledger(i))
    keep(history, [validation(1, 3)])
    assert all(entry.ledger_index > 2 for entry in history.since(0))


def test_history_is_bounded_in_bytes_too() -> None:
    history = History(ledgers=1000, max_bytes=20_000)
    for i in range(1, 30):
        keep(history, published_ledger(i, 5))
    assert history.nbytes <= 20_000
    floor = history.resumable_from
    assert floor is not None
    kept = {entry.ledger_index for entry in history.since(0)}
    assert kept == set(range(floor + 1, 30))


def test_history_bound_holds_inside_one_huge_ledger() -> None:
    history = History(ledgers=10, max_bytes=50_000)
    keep(history, [xrp_payment(7, s) for s in range(500)])
    assert history.nbytes <= 50_000
    assert len(history) == 0
    assert history.resumable_from == 7


def test_zero_ledgers_keeps_nothing() -> None:
    history = History(ledgers=0)
    keep(history, published_ledger(1))
    assert len(history) == 0
    assert history.resumable_from is None
