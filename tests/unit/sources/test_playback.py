"""Recordings read back: errors name their line, and the shipped sample is valid."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from hub.sources.playback import RecordingError, read_recording
from tests.helpers.paths import SAMPLE_RECORDING


def test_recording_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "message": {}}\nnot json\n')
    with pytest.raises(RecordingError, match=r"bad\.jsonl:2"):
        read_recording(bad)


def test_sample_is_valid_json_lines() -> None:
    for line in (SAMPLE_RECORDING).read_bytes().splitlines():
        msgspec.json.decode(line)
