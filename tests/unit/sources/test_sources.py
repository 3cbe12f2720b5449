"""The ``[source] source`` setting: which sources exist, and an upstream's URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import sources
from hub.config import ConfigError


@pytest.mark.parametrize("source", ["none", "simulator", "upstream:ws://a"])
def test_every_kind_of_source_is_accepted(source: str) -> None:
    sources.check(source)


def test_a_replay_needs_a_file_it_can_read(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    with pytest.raises(ConfigError, match="no such file"):
        sources.check(f"replay:{recording}")
    recording.write_text("")
    sources.check(f"replay:{recording}")


@pytest.mark.parametrize(
    ("source", "why"),
    [("rippled", "unknown source"), ("upstream:", "at least one"), ("upstream: ,", "at least one")],
)
def test_what_no_source_can_run_is_refused(source: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        sources.check(source)


def test_upstream_urls_are_split_and_trimmed_and_other_sources_have_none() -> None:
    assert sources.upstream_urls("upstream:ws://a, wss://b ,") == ["ws://a", "wss://b"]
    assert sources.upstream_urls("simulator") == []
    assert sources.upstream_urls("replay:upstream.jsonl") == []
