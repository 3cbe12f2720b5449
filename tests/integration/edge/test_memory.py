"""Memory stays bounded with a subscriber that never reads (benchmarks/slow_consumer.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_silent_subscriber_cannot_grow_the_hub(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    queue = 4 * 1024 * 1024
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.slow_consumer",
            "--events",
            "20000",
            "--queue-bytes",
            str(queue),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["all_received"]
    assert result["received_per_reader"] == [20000] * result["readers"]
    assert result["silent_client_cut"]
    # 20 000 events of ~700 bytes are ~14 MiB: the hub keeps at most the queue bound
    # of them for the silent client, plus a small constant.
    assert result["rss_growth_mib"] < queue / 2**20 + 8
