"""``python -m benchmarks report FILE.json... --out DIR``: result JSON to a page and a chart.

Writes ``DIR/figures.md`` (every run of every scenario as markdown tables, the hub
beside the peers, and the machine the runs were made on) and ``DIR/chart.png`` (each
scenario that ran more than one server: its headline figure per server). The
documentation's benchmark pages and the README show both; regenerate them whenever the
reference JSON changes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scenarios import NAMES

SERVERS = ("hub", "hub-deflate", "raw", "websockets", "ws")
NONE = "\u2013"
"""What a table shows for a figure a run does not have: an en dash."""
TIMES = "\u00d7"
"""The order servers appear in, in every table and in the chart."""


@dataclass(frozen=True)
class Headline:
    """The one figure that sums up a scenario when servers are compared."""

    label: str
    get: Callable[[Mapping[str, Any]], float | None]
    lower_is_better: bool
    unit: str


def _latency(name: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda run: run["latency_ms"][name]


def _field(name: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda run: run.get(name)


_P99 = Headline("p99 publish → receive, ms", _latency("p99"), True, "ms")
HEADLINES: dict[str, Headline] = {
    "delivery": Headline(
        "µs of server CPU per delivery", _field("server_cpu_us_per_delivery"), True, "µs"
    ),
    "saturation": Headline(
        "deliveries per second on one core", _field("deliveries_per_s"), False, "/s"
    ),
    "burst": _P99,
    "mainnet": _P99,
}
"""The scenarios that compare servers doing the same fan-out, and what sums each up."""


def _compared(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (name, entry)
        for name, entry in results["scenarios"].items()
        if name in HEADLINES and len(entry["runs"]) > 1
    ]


def load(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The runs of several result files as one: their scenarios in the benchmark's own
    order (a scenario may come from one file only), and each file's command and machine."""
    scenarios: dict[str, Any] = {}
    sources: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for name, entry in data["scenarios"].items():
            if name in scenarios:
                raise ValueError(f"scenario {name!r} is in more than one file (again in {path})")
            scenarios[name] = entry
        sources.append({"command": data["command"], "machine": data["machine"]})
    order = {name: i for i, name in enumerate(NAMES)}
    ordered = dict(sorted(scenarios.items(), key=lambda item: order.get(item[0], len(order))))
    return {"scenarios": ordered, "sources": sources}


def number(value: float | None, unit: str = "") -> str:
    """A figure as the tables print it: millions as ``M``, thousands grouped by a thin
    space, small values to three significant digits."""
    if value is None:
        return NONE
    if unit == "/s" and value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u202f")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ordered(runs: Mapping[str, Any]) -> list[str]:
    known = [s for s in SERVERS if s in runs]
    return known + sorted(s for s in runs if s not in SERVERS)


def bounded(run: Mapping[str, Any]) -> str:
    """Whether the load generator bounded a run, as the JSON records it: past 80 % of
    its core during the load (the server's own figure is then better still), or only
    while the connections were opened (the handshake rate is a floor)."""
    if run.get("bounded_by_loadgen"):
        return "yes"
    if run.get("handshakes_per_s") and run.get("handshakes_bounded_by_loadgen"):
        return "while connecting"
    return "no"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def peer_table(results: Mapping[str, Any]) -> str:
    """The hub beside the peers: one row per scenario that ran more than one server,
    its headline figure per server; ``*`` marks a figure bounded by the load generator."""
    compared = _compared(results)
    servers = [s for s in SERVERS if any(s in e["runs"] for _, e in compared)]
    lines = [_row(["scenario", "figure", *servers]), _row(["---"] * (2 + len(servers)))]
    for name, entry in compared:
        head = HEADLINES[name]
        better = "lower" if head.lower_is_better else "higher"
        cells = [f"`{name}`", f"{head.label} ({better} is better)"]
        for server in servers:
            run = entry["runs"].get(server)
            if run is None:
                cells.append("")
                continue
            mark = "\\*" if run.get("bounded_by_loadgen") else ""
            cells.append(number(head.get(run), head.unit) + mark)
        lines.append(_row(cells))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Column:
    head: str
    cell: Callable[[Mapping[str, Any]], str]


def _warmup(run: Mapping[str, Any]) -> str:
    values = (run.get("warmup_ms") or {}).get("p99") or []
    return number(values[0]) if values else NONE


def _cpu(run: Mapping[str, Any]) -> str:
    kernel = run.get("server_kernel_share_percent")
    base = f"{number(run.get('server_cpu_percent'))} / {number(run.get('server_cpu_peak_percent'))}"
    return base + (f" ({kernel:.0f})" if kernel is not None else "")


def _loadgen(run: Mapping[str, Any]) -> str:
    return (
        f"{number(run.get('loadgen_cpu_percent'))} / {number(run.get('loadgen_cpu_peak_percent'))}"
    )


COLUMNS = (
    Column("deliveries/s", lambda r: number(r.get("deliveries_per_s"), "/s")),
    Column("round trips/s", lambda r: number(r.get("requests_per_s"), "/s")),
    Column("µs CPU each", lambda r: number(r.get("server_cpu_us_per_delivery"))),
    Column("wire B each", lambda r: number(r.get("wire_bytes_per_delivery") or None)),
    Column("p50 ms", lambda r: number(r["latency_ms"]["p50"])),
    Column("p99 ms", lambda r: number(r["latency_ms"]["p99"])),
    Column("max ms", lambda r: number(r["latency_ms"]["max"])),
    Column("warm-up ledger p99 ms", _warmup),
    Column("KiB per connection", lambda r: number(r.get("rss_per_conn_kib"))),
    Column("handshakes/s", lambda r: number(r.get("handshakes_per_s"), "/s")),
    Column("lost", lambda r: str(r["lost"])),
    Column("server CPU % avg / peak (kernel share)", _cpu),
    Column("load generator % avg / peak", _loadgen),
    Column("bounded by the load generator", bounded),
)
_SHOWN_ONLY_WHEN_MEMORY = {"KiB per connection", "handshakes/s"}


def scenario_table(entry: Mapping[str, Any]) -> str:
    """Every run of one scenario; a column none of its runs has a figure for is left out."""
    runs = [entry["runs"][s] for s in _ordered(entry["runs"])]
    memory = any(r.get("rss_per_conn_kib") is not None for r in runs)
    columns = [
        c
        for c in COLUMNS
        if any(c.cell(r) != NONE for r in runs)
        and (memory or c.head not in _SHOWN_ONLY_WHEN_MEMORY)
    ]
    lines = [_row(["server", *(c.head for c in columns)]), _row(["---"] * (1 + len(columns)))]
    for run in runs:
        lines.append(_row([run["server"], *(c.cell(run) for c in columns)]))
    return "\n".join(lines) + "\n"


def machine_note(results: Mapping[str, Any]) -> str:
    """The machines the runs were made on, each described once."""
    seen: list[str] = []
    for source in results["sources"]:
        m = source["machine"]
        packages = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
        text = (
            f"{m['cpus']} {TIMES} {m['cpu']}, {m['memory_gib']} GiB, {m['platform']}; Python"
            f" {m['python']}, Node {m.get('node') or NONE}; {packages}. The server under"
            f" test on CPU {', '.join(map(str, m['server_cpus']))}, the load generator"
            f" ({m['loadgen_processes']} subscriber processes and the publisher) on CPU"
            f" {', '.join(map(str, m['loadgen_cpus']))}."
        )
        if text not in seen:
            seen.append(text)
    return "\n".join(f"- {text}" for text in seen) + "\n"


def page(results: Mapping[str, Any], chart_name: str = "chart.png") -> str:
    """The whole ``figures.md``."""
    parts = [
        "# Reference figures\n",
        "<!-- Generated by `python -m benchmarks report`; edit the JSON, not this file. -->\n",
        f"![The hub beside the peers]({chart_name})\n",
        "## The hub beside the peers\n",
        "<!-- --8<-- [start:peers] -->",
        peer_table(results),
        "An asterisk marks a figure bounded by the load generator (it passed 80 % of its"
        " core): the server's own ceiling is higher.\n",
        "<!-- --8<-- [end:peers] -->\n",
    ]
    for name, entry in results["scenarios"].items():
        parts.append(f"## `{name}`: {entry['title']}\n")
        parts.append(scenario_table(entry))
        compression = entry.get("compression")
        if compression:
            parts.append(
                "Compressed against plain, per delivery: wire bytes"
                f" {TIMES} {compression['wire_bytes_per_delivery']}, server CPU"
                f" {TIMES} {compression['cpu_per_delivery']}.\n"
            )
    parts.append("## Commands\n")
    parts.append("\n".join(f"- `{s['command']}`" for s in results["sources"]) + "\n")
    parts.append("## Machine\n")
    parts.append(machine_note(results))
    return "\n".join(parts)


_COLOURS = {
    "hub": "#1f6feb",
    "hub-deflate": "#58a6ff",
    "raw": "#8b949e",
    "websockets": "#d29922",
    "ws": "#8957e5",
}


def chart(results: Mapping[str, Any], path: str | Path) -> None:
    """One panel per compared scenario: its headline figure, one bar per server, on a
    log scale when the servers differ more than tenfold."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    compared = _compared(results)
    if not compared:
        raise ValueError("no scenario ran more than one server: nothing to chart")
    figure, axes = pyplot.subplots(
        1, len(compared), figsize=(3.2 * len(compared), 3.6), squeeze=False
    )
    for ax, (name, entry) in zip(axes[0], compared, strict=True):
        _panel(ax, name, entry)
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    pyplot.close(figure)


def _panel(ax: Any, name: str, entry: Mapping[str, Any]) -> None:
    head = HEADLINES[name]
    servers = _ordered(entry["runs"])
    values = [head.get(entry["runs"][s]) or 0.0 for s in servers]
    bars = ax.bar(servers, values, color=[_COLOURS.get(s, "#6e7781") for s in servers])
    positive = [v for v in values if v > 0]
    if positive and max(positive) > 10 * min(positive):
        ax.set_yscale("log")
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            number(value, head.unit),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    better = "lower" if head.lower_is_better else "higher"
    ax.set_title(f"{name}\n{head.label}\n({better} is better)", fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(y=0.15)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks report",
        description="Turn result JSON into DIR/figures.md (markdown tables) and DIR/chart.png.",
    )
    parser.add_argument("files", nargs="+", help="result JSON written by python -m benchmarks")
    parser.add_argument("--out", required=True, help="directory to write figures.md and chart.png")
    args = parser.parse_args(argv)
    try:
        results = load(args.files)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"cannot read the results: {exc}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.md").write_text(page(results))
    chart(results, out / "chart.png")
    print(f"wrote {out / 'figures.md'} and {out / 'chart.png'}")
    return 0
