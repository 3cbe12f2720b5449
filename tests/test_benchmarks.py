"""The benchmark tool works end to end: every scenario at smoke size, nothing lost.

Not a timed test: the figures are not checked, only that ``python -m benchmarks
--smoke`` runs every scenario against the hub (and the peers it can run), writes its
JSON, and that every subscriber got every message it should have, once and in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"burst", "saturation", "idle", "requests", "filters"}


def test_smoke_run_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert set(results["scenarios"]) == SCENARIOS
    for name, scenario in results["scenarios"].items():
        assert "hub" in scenario["runs"], name
        for server, run in scenario["runs"].items():
            assert run["lost"] == 0, (name, server, run)
            assert run["opened"] == run["connections"], (name, server)
            assert run["received"] > 0, (name, server)
    for name in ("burst", "saturation"):
        assert "websockets" in results["scenarios"][name]["runs"]
    assert "deliv/s" in done.stdout


def test_failover_benchmark_kills_a_leader_and_checks_every_stream() -> None:
    from tests.redis_server import need_redis

    need_redis()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.failover", "--kills", "2", "--lease", "1",
         "--ledger-interval", "0.3", "--tx-per-ledger", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    summary = lines[-1]
    assert summary["kills"] == 2
    assert summary["ledgers_repeated_or_skipped"] == 0
    assert summary["ledgers_short_of_transactions"] == 0
    assert all(kill["next_ledger_s"] > 0 for kill in lines[:2])
