"""The README's code blocks, so that tests run the very code a reader copies."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_code(language: str, containing: str) -> str:
    """The one fenced ``language`` block of the README that contains ``containing``."""
    blocks = README.read_text().split("```" + language + "\n")[1:]
    found = [block.split("\n```", 1)[0] for block in blocks]
    found = [block for block in found if containing in block]
    if len(found) != 1:
        raise LookupError(f"{len(found)} {language} blocks of the README contain {containing!r}")
    return found[0] + "\n"
