"""The documentation keeps up with the code: every setting, every metric, the example
configuration, the README's tested snippets on the getting-started page, and no work
diary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from hub import config as hub_config
from hub.core import metrics
from hub.core.load import DEFAULT_COSTS
from tests.helpers.paths import DOCS, README, ROOT
from tests.helpers.snippets import marked_blocks

EXAMPLE = ROOT / "hub.example.toml"


def sections(struct: type[msgspec.Struct] = hub_config.Config, prefix: str = "") -> dict[str, Any]:
    """Every settings table, by its TOML name (``server``, ``load.costs``, …): the
    fields of the Struct behind it, or for a table of free keys, the keys it knows."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        name = prefix + field.name
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            out[name] = field.type
            out.update(sections(field.type, name + "."))
    return out


def field_names(struct: type[msgspec.Struct]) -> set[str]:
    return {field.name for field in msgspec.structs.fields(struct)}


FREE_TABLES = {"load.costs": set(DEFAULT_COSTS)}
"""Tables of free keys (a ``dict`` field) and the keys the hub knows for them."""


def documented_keys(page: str) -> dict[str, set[str]]:
    """``## `[section]` `` headings of the configuration page and the keys of the
    table under each (rows that begin with a backquoted key)."""
    out: dict[str, set[str]] = {}
    for part in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        heading, _, body = part.partition("\n")
        match = re.fullmatch(r"`\[([a-z_.]+)\]`", heading.strip())
        assert match, f"configuration.md: unexpected heading {heading!r}"
        out[match[1]] = set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))
    return out


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = documented_keys((DOCS / "configuration.md").read_text())
    expected = {name: field_names(struct) for name, struct in sections().items()}
    expected.update(FREE_TABLES)
    assert set(documented) == set(expected), "configuration.md's sections"
    for name, keys in expected.items():
        assert documented[name] == keys, f"[{name}] in docs/configuration.md"


def example_lines() -> list[tuple[str, str, bool]]:
    """(section, key, commented out) for each ``key = value`` line of the example."""
    out: list[tuple[str, str, bool]] = []
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        if header := re.fullmatch(r"(?:# )?\[([a-z_.]+)\]", line):
            section = header[1]
        elif setting := re.fullmatch(r"(# )?([a-z_]+) = .+", line):
            out.append((section, setting[2], bool(setting[1])))
    return out


def test_the_example_configuration_loads_with_every_default() -> None:
    assert hub_config.load(EXAMPLE) == hub_config.Config()


def test_the_example_configuration_names_every_setting() -> None:
    lines = example_lines()
    named = {(section, key) for section, key, _ in lines}
    tables = sections()
    expected = {
        (name, key)
        for name, struct in tables.items()
        for key in field_names(struct)
        if f"{name}.{key}" not in FREE_TABLES  # a table of its own below
    }
    expected |= {(name, key) for name, keys in FREE_TABLES.items() for key in keys}
    assert named == expected
    assert len(lines) == len(named), "a key appears twice"
    for section, key, commented in lines:
        if section in FREE_TABLES:
            continue
        default = getattr(tables[section](), key)
        # Only a setting with no TOML value by default (unset) may be commented out.
        assert commented == (default is None), f"[{section}] {key}"


def documented_metrics(page: str) -> set[str]:
    names = re.findall(r"^\| `(hub_[a-z_]+)[`{]", page, flags=re.MULTILINE)
    return {name.removesuffix("_total") for name in names}


def test_every_metric_is_documented_and_nothing_else() -> None:
    source = Path(metrics.__file__).read_text()
    defined = set(re.findall(r'"(hub_[a-z_]+)"', source))
    assert "hub_requests" in defined
    assert "hub_publish_to_write_seconds" in defined
    assert documented_metrics((DOCS / "operations.md").read_text()) == defined


def test_getting_started_shows_the_readmes_tested_snippets() -> None:
    page = (DOCS / "getting-started.md").read_text()
    for name, (language, code) in marked_blocks().items():
        assert f"```{language}\n{code}```" in page, name


DIARY = re.compile(r"\b(issue|stop) [0-9]+\b", re.IGNORECASE)


def test_no_work_diary_in_the_product() -> None:
    files = [README, *DOCS.rglob("*.md"), EXAMPLE]
    files += [*(ROOT / "hub").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if DIARY.search(line)
    ]
    assert not found, "\n".join(found)
