"""Code blocks of the README and the documentation, so that tests run the very code a
reader copies."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def code_block(path: Path, language: str, containing: str) -> str:
    """The one fenced ``language`` block of ``path`` that contains ``containing``."""
    blocks = path.read_text().split("```" + language + "\n")[1:]
    found = [block.split("\n```", 1)[0] for block in blocks]
    found = [block for block in found if containing in block]
    if len(found) != 1:
        raise LookupError(f"{len(found)} {language} blocks of {path.name} contain {containing!r}")
    return found[0] + "\n"


def readme_code(language: str, containing: str) -> str:
    """The one fenced ``language`` block of the README that contains ``containing``."""
    return code_block(README, language, containing)


def docs_code(page: str, language: str, containing: str) -> str:
    """The one fenced ``language`` block of ``docs/<page>`` that contains ``containing``."""
    return code_block(DOCS / page, language, containing)
