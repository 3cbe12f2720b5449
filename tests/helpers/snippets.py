"""Code blocks of the README and the documentation, so that tests run the very code a
reader copies."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.paths import DOCS, README


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


MARKED = re.compile(r"<!-- test: (\S+) -->\n```(\w+)\n(.*?)\n```\n", re.DOTALL)


def marked_blocks() -> dict[str, tuple[str, str]]:
    """The README's marked blocks: name -> (language, code)."""
    found: dict[str, tuple[str, str]] = {}
    for name, language, code in MARKED.findall(README.read_text()):
        assert name not in found, f"two README blocks are marked {name!r}"
        found[name] = (language, code + "\n")
    return found
