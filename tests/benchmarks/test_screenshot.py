"""``python -m benchmarks.screenshot``: the docs' picture of the dashboard, made from a
hub on its simulator in Debian's headless Chromium (skipped locally without it, a
failure in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import screenshot
from tests.helpers.programs import IN_CI


def test_screenshot_script_writes_the_picture(tmp_path: Path) -> None:
    """``python -m benchmarks.screenshot`` starts a hub, waits for its history and writes
    a 1440x900 PNG of the dashboard (here to a temporary file, with a short history)."""
    reason = None if os.access(screenshot.CHROMIUM, os.X_OK) else "chromium is missing"
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path / "dashboard.png"
    command = [sys.executable, "-m", "benchmarks.screenshot", "--out", str(out)]
    command += ["--ledgers", "45", "--interval", "0.1"]
    subprocess.run(command, check=True, timeout=180, stdin=subprocess.DEVNULL)
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20]), int.from_bytes(head[20:24])) == (1440, 900)
