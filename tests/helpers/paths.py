"""Where things are in the checkout."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
HUB = ROOT / "hub"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
LAYERS = ("unit", "integration", "interop", "benchmarks")
"""The folders of tests, fastest first: ``testpaths`` in pyproject.toml, in this order."""
SAMPLE_RECORDING = TESTS / "data" / "sample.jsonl"
"""The recording ``hub serve --source replay:`` is shown with (a few ledgers, JSON lines)."""
