"""``python -m benchmarks report``: result JSON to markdown tables and a PNG chart.

The reference figures the documentation and the README show are this tool's output for
``benchmarks/results/*.json``; the last tests here check they are current."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import messages, scenarios, summary
from tests.helpers.paths import DOCS, README, ROOT


def _run(server: str, **figures: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "server": server,
        "deliveries_per_s": None,
        "requests_per_s": None,
        "server_cpu_us_per_delivery": None,
        "wire_bytes_per_delivery": None,
        "latency_ms": {"p50": None, "p99": None, "p99_9": None, "max": None},
        "rss_per_conn_kib": None,
        "handshakes_per_s": None,
        "lost": 0,
        "server_cpu_percent": 97.0,
        "server_cpu_peak_percent": 99.0,
        "server_kernel_share_percent": 60.0,
        "loadgen_cpu_percent": 40.0,
        "loadgen_cpu_peak_percent": 50.0,
        "bounded_by_loadgen": False,
        "handshakes_bounded_by_loadgen": False,
    }
    run.update(figures)
    return run


MACHINE = {
    "platform": "Linux-test",
    "cpu": "Test CPU",
    "cpus": 2,
    "memory_gib": 8.0,
    "python": "3.11.9",
    "node": None,
    "packages": {"trio": "0.30.0"},
    "server_cpus": [0],
    "loadgen_cpus": [1],
    "loadgen_processes": 4,
}


def _results() -> dict[str, Any]:
    burst_hub = _run("hub", latency_ms={"p50": 20.0, "p99": 41.25, "p99_9": 44.0, "max": 45.0})
    burst_hub["warmup_ms"] = {"p99": [52.5], "max": [53.0]}
    return {
        "command": "python -m benchmarks --scenario burst,idle --json small.json",
        "started": "whenever",
        "machine": MACHINE,
        "skipped": [],
        "scenarios": {
            "idle": {
                "title": "idle: a few connections",
                "runs": {
                    "hub": _run(
                        "hub",
                        rss_per_conn_kib=10.7,
                        handshakes_per_s=4050,
                        handshakes_bounded_by_loadgen=True,
                    )
                },
            },
            "burst": {
                "title": "burst: a few subscribers",
                "runs": {
                    "raw": _run(
                        "raw", latency_ms={"p50": 30.0, "p99": 61.5, "p99_9": 62.0, "max": 70.0}
                    ),
                    "hub": burst_hub,
                    "websockets": _run(
                        "websockets",
                        latency_ms={"p50": 500.0, "p99": 1234.0, "p99_9": 1300.0, "max": 1400.0},
                        bounded_by_loadgen=True,
                    ),
                },
            },
        },
    }


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_writes_the_tables_and_the_chart(tmp_path: Path) -> None:
    source = tmp_path / "small.json"
    source.write_text(json.dumps(_results()))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "report", str(source), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (out / "figures.md").read_text()
    # The peers' table: burst's p99 per server, the hub first, a bounded figure marked.
    assert "| scenario | figure | hub | raw | websockets |" in page
    assert (
        "| `burst` | p99 publish → receive, ms (lower is better) | 41.2 | 61.5 | 1\u202f234\\* |"
        in page
    )
    # Scenarios in the benchmark's order, each with its own table.
    assert page.index("## `burst`") < page.index("## `idle`")
    idle = page[page.index("## `idle`") :]
    assert "KiB per connection" in idle
    assert "| hub |" in idle
    assert "10.7" in idle
    assert "4\u202f050" in idle
    assert "while connecting" in idle
    burst = page[page.index("## `burst`") : page.index("## `idle`")]
    assert "warm-up ledger p99 ms" in burst
    assert "52.5" in burst
    assert "KiB per connection" not in burst  # columns no run of it has are left out
    assert "`python -m benchmarks --scenario burst,idle --json small.json`" in page
    assert "2 \u00d7 Test CPU, 8.0 GiB, Linux-test" in page
    assert "![The hub beside the peers](chart.png)" in page
    width, height = _png_size(out / "chart.png")
    assert width > 300
    assert height > 200


def test_report_refuses_a_scenario_given_twice(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(_results()))
    with pytest.raises(ValueError, match="more than one file"):
        summary.load([tmp_path / "a.json", tmp_path / "b.json"])
    with pytest.raises(SystemExit) as exit_:
        summary.main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path)])
    assert exit_.value.code == 2


def test_the_chart_needs_servers_to_compare(tmp_path: Path) -> None:
    results = _results()
    del results["scenarios"]["burst"]
    (tmp_path / "idle.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="nothing to chart"):
        summary.chart(summary.load([tmp_path / "idle.json"]), tmp_path / "chart.png")


def test_help_names_the_report_and_no_work_history() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "python -m benchmarks report" in done.stdout
    assert "issue" not in done.stdout.lower()


def test_the_mainnet_scenario_carries_todays_mainnet_volume() -> None:
    mainnet = scenarios.full()["mainnet"]
    low, high = mainnet.publish["tx_per_ledger"]
    assert (low, high) == (200, 400)
    params = mainnet.publisher_params()
    sizes = messages.ledger_sizes(params["tx_per_ledger"], params["ledgers"])
    assert len(sizes) == params["ledgers"] == 11  # ten measured after one warm-up
    assert all(200 <= n <= 400 for n in sizes)
    assert len(set(sizes)) > 1  # the volume varies from ledger to ledger, as mainnet's
    assert sizes == messages.ledger_sizes([200, 400], 11)  # and the same in every run
    assert messages.ledger_sizes(100, 3) == [100, 100, 100]


def test_a_ledger_announces_the_transactions_it_carries() -> None:
    closed = json.loads(messages.Messages(0).ledger_closed(1, 2, 1000, 321))
    assert closed["txn_count"] == 321
    assert closed["ledger_index"] == 1000


RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))


def test_the_reference_figures_are_the_report_of_the_reference_results() -> None:
    assert RESULTS, "benchmarks/results holds the reference runs"
    results = summary.load(RESULTS)
    assert (DOCS / "benchmarks" / "figures.md").read_text() == summary.page(results), (
        "run: python -m benchmarks report benchmarks/results/*.json --out docs/benchmarks"
    )
    assert (DOCS / "benchmarks" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_performance_table_is_the_reports() -> None:
    text = README.read_text()
    start = "<!-- performance table: python -m benchmarks report -->\n"
    table = text[text.index(start) + len(start) : text.index("<!-- end of performance table")]
    assert table == summary.peer_table(summary.load(RESULTS))
