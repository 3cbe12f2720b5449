"""Turning raw counts into figures: percentiles, ratios, the stdout table, progress, JSON.

Latencies arrive as the workers' histograms (4.096 µs buckets, see
:mod:`benchmarks.loadgen`); a percentile is reported as the upper edge of its bucket,
so figures are never optimistic by more than one bucket.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .loadgen import HIST_SHIFT, LEDGER_SHIFT

QUANTILES = {"p50": 0.50, "p99": 0.99, "p99_9": 0.999}


def merge_histograms(parts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in parts:
        for bucket, n in part.items():
            out[bucket] = out.get(bucket, 0) + n
    return out


def latency_ms(
    hist: Mapping[int, int], slow: list[int], shift: int = HIST_SHIFT
) -> dict[str, float | None]:
    """p50, p99, p99.9 and max in milliseconds (None without samples), from buckets of
    2**shift ns."""
    total = sum(hist.values()) + len(slow)
    out: dict[str, float | None] = dict.fromkeys((*QUANTILES, "max"), None)
    if not total:
        return out
    buckets = sorted(hist.items())
    slow = sorted(slow)

    def at_rank(rank: int) -> float:
        seen = 0
        for bucket, n in buckets:
            seen += n
            if seen >= rank:
                return ((bucket + 1) << shift) / 1e6
        return slow[rank - seen - 1] / 1e6

    for name, q in QUANTILES.items():
        out[name] = round(at_rank(max(1, math.ceil(q * total))), 3)
    out["max"] = round(at_rank(total), 3)
    return out


def per_ledger_ms(parts: Iterable[Mapping[int, Mapping[int, int]]]) -> dict[str, list[float]]:
    """Each ledger's p99 and max (ms), in publish order, from the workers' per-ledger
    histograms (:func:`benchmarks.loadgen.by_ledger`); empty lists without any."""
    merged: dict[int, list[Mapping[int, int]]] = {}
    for part in parts:
        for stamp, hist in part.items():
            merged.setdefault(stamp, []).append(hist)
    out: dict[str, list[float]] = {"p99": [], "max": []}
    for stamp in sorted(merged):
        figures = latency_ms(merge_histograms(merged[stamp]), [], LEDGER_SHIFT)
        for name, values in out.items():
            values.append(figures[name] or 0.0)
    return out


def latency_figures(results: Sequence[Mapping[str, Any]], warmup: int) -> dict[str, Any]:
    """The workers' latencies as figures: ``latency_ms`` (the warm-up ledgers are not
    in the histograms); each ledger's p99 and max, the first ``warmup`` apart; and
    ``with_warmup_ms``, every ledger counted (from the per-ledger buckets, so coarser)."""
    ledgers = per_ledger_ms(r["ledgers"] for r in results)
    every = merge_histograms(h for r in results for h in r["ledgers"].values())
    return {
        "latency_ms": latency_ms(
            merge_histograms(r["hist"] for r in results), [x for r in results for x in r["slow"]]
        ),
        "ledgers_ms": {name: values[warmup:] for name, values in ledgers.items()},
        "warmup_ms": {name: values[:warmup] for name, values in ledgers.items()},
        "with_warmup_ms": latency_ms(every, [], LEDGER_SHIFT) if warmup else None,
    }


def ratios(hub: Mapping[str, Any], peer: Mapping[str, Any]) -> dict[str, float | None]:
    """hub/peer for each comparable figure (deliveries: higher is better; the rest lower)."""

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    out = {"deliveries_per_s": div(hub["deliveries_per_s"], peer["deliveries_per_s"])}
    out["cpu_per_delivery"] = div(
        hub["server_cpu_us_per_delivery"], peer["server_cpu_us_per_delivery"]
    )
    for name in ("p50", "p99", "max"):
        out[f"latency_{name}"] = div(hub["latency_ms"][name], peer["latency_ms"][name])
    out["rss"] = div(hub["server_rss_mib"], peer["server_rss_mib"])
    return out


def compression(plain: Mapping[str, Any], deflate: Mapping[str, Any]) -> dict[str, float | None]:
    """permessage-deflate against plain on the same hub: compressed/plain per delivery."""

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    return {
        "wire_bytes_per_delivery": div(
            deflate["wire_bytes_per_delivery"], plain["wire_bytes_per_delivery"]
        ),
        "cpu_per_delivery": div(
            deflate["server_cpu_us_per_delivery"], plain["server_cpu_us_per_delivery"]
        ),
    }


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _extra(run: Mapping[str, Any]) -> str:
    parts = []
    if run.get("rss_per_conn_kib") is not None:
        parts.append(f"{run['rss_per_conn_kib']:.1f} KiB/conn")
        if run.get("handshakes_per_s"):
            parts.append(f"{run['handshakes_per_s']:,.0f} handshakes/s")
            connecting = run["connecting"]
            parts.append(f"loadgen {_loadgen(connecting)} % while connecting")
            if run.get("handshakes_bounded_by_loadgen"):
                parts.append("HANDSHAKES BOUNDED BY THE LOAD GENERATOR")
    if run.get("requests_per_s"):
        parts.append(f"{run['requests_per_s']:,.0f} req/s")
    if run.get("workers", 1) > 1:
        parts.append(f"{run['workers']} workers")
    if run.get("bounded_by_loadgen"):
        parts.append("BOUNDED BY THE LOAD GENERATOR")
    return ", ".join(parts)


def _loadgen(run: Mapping[str, Any]) -> str:
    busiest = max(run["loadgen_cpu_per_process"], default=0.0)
    return f"{run['loadgen_cpu_percent']:.0f}/{run['loadgen_cpu_peak_percent']:.0f}/{busiest:.0f}"


HEAD = (
    "scenario",
    "server",
    "conns",
    "deliv/s",
    "µs/deliv",
    "B/deliv",
    "p50 ms",
    "p99 ms",
    "max ms",
    "lost",
    "CPU %",
    "kernel %",
    "RSS MiB",
    "loadgen %",
    "notes",
)


def _row(name: str, run: Mapping[str, Any]) -> tuple[str, ...]:
    lat = run["latency_ms"]
    return (
        name,
        run["server"],
        str(run["connections"]),
        _num(run["deliveries_per_s"], 0),
        _num(run["server_cpu_us_per_delivery"], 2),
        _num(run.get("wire_bytes_per_delivery"), 0),
        _num(lat["p50"], 2),
        _num(lat["p99"], 2),
        _num(lat["max"], 2),
        str(run["lost"]),
        _num(run["server_cpu_percent"], 0),
        _num(run["server_kernel_share_percent"], 0),
        _num(run["server_rss_mib"], 1),
        _loadgen(run),
        _extra(run),
    )


def table(results: Mapping[str, Any]) -> str:
    """The human-readable summary: one row per run, then the hub/peer ratios."""
    rows = [
        _row(name, run)
        for name, scenario in results["scenarios"].items()
        for run in scenario["runs"].values()
    ]
    lines = [
        _grid(HEAD, rows),
        "µs/deliv: server CPU per delivery (per round trip in requests); kernel %: its share"
        " of that CPU; B/deliv: WebSocket bytes (frame headers included) per delivery;"
        " loadgen %: average / busiest 0.5 s / busiest process, % of one core",
    ]
    for name, scenario in results["scenarios"].items():
        if "compression" in scenario:
            c = scenario["compression"]
            lines.append(
                f"{name}: hub-deflate/hub: wire bytes per delivery"
                f" {_num(c['wire_bytes_per_delivery'], 3)}, µs CPU per delivery"
                f" {_num(c['cpu_per_delivery'], 3)}"
            )
    ratio_rows: list[tuple[str, ...]] = []
    for name, scenario in results["scenarios"].items():
        for peer, r in scenario.get("ratios", {}).items():
            ratio_rows.append(
                (
                    name,
                    f"hub/{peer}",
                    _num(r["deliveries_per_s"], 2),
                    _num(r["cpu_per_delivery"], 3),
                    _num(r["latency_p50"], 2),
                    _num(r["latency_p99"], 2),
                    _num(r["latency_max"], 2),
                    _num(r["rss"], 2),
                )
            )
    if ratio_rows:
        lines.append("")
        lines.append("hub/peer ratios (deliveries: higher is better; the rest: lower)")
        lines.append(
            _grid(
                ("scenario", "ratio", "deliv/s", "µs/deliv", "p50", "p99", "max", "RSS"),
                ratio_rows,
            )
        )
    for note in results.get("skipped", []):
        lines.append(f"skipped: {note}")
    return "\n".join(lines)


def _grid(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 1, len(cells) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), sep, *(fmt(r) for r in rows)])


def write_json(path: str | Path, results: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


class Progress:
    """One status line on stderr: rewritten in place on a terminal, every 2 s otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()
        elif now - self._last >= 2.0:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def line(self, text: str) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last = 0.0
