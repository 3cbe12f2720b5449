"""The hub's counters, and reports that ``server_info`` shows whole."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hub.core.stats import Report, Stats


@dataclass(slots=True)
class Figures(Report):
    name: str
    count: int = 0
    urls: list[str] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)


def test_a_report_is_its_fields_in_order_as_plain_json() -> None:
    figures = Figures("upstream", 3, ["ws://a"], Counter({"x": 2}))
    assert figures.as_json() == {
        "name": "upstream",
        "count": 3,
        "urls": ["ws://a"],
        "by_kind": {"x": 2},
    }
    assert list(figures.as_json()) == ["name", "count", "urls", "by_kind"]


def test_counters_start_at_zero_and_errors_count_by_token() -> None:
    stats = Stats()
    assert stats.requests == stats.deliveries == stats.slow_closes == 0
    stats.errors["badSyntax"] += 1
    assert Stats().errors == Counter()  # each node its own counter
