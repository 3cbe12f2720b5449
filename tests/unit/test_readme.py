"""The README says what CI does: its snippets are marked, its test command is the one
``.ci/run`` ends with."""

from __future__ import annotations

from tests.helpers.paths import README, ROOT
from tests.helpers.snippets import marked_blocks


def test_the_readme_marks_a_python_and_a_javascript_snippet() -> None:
    blocks = marked_blocks()
    assert {name: language for name, (language, _) in blocks.items()} == {
        "xrpl.js": "js",
        "xrpl-py": "python",
    }


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().rstrip("\n").splitlines()[-1]
    assert ci.startswith("python3 -m venv .venv && ")
    assert f"```sh\n{ci}\n```" in README.read_text()
