"""The README's set-up command, run as a reader would run it."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers.paths import README


def test_the_readme_set_up_command_runs_the_hub_on_its_simulator() -> None:
    text = README.read_text()
    setup = text[text.index("## Set up") : text.index("## Connect")]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, re.DOTALL)
    assert len(commands) == 2, "the README has exactly two set-up commands"
    assert commands[0] == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/hub serve"
    )
    # `hub serve` with no flags is the simulator on port 6006, the snippets' address.
    done = subprocess.run(
        [sys.executable, "-c", "import hub.config as c; s = c.load(); print(s.source.source,"
         " s.server.host, s.server.port)"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.split() == ["simulator", "127.0.0.1", "6006"]
