"""The README's client snippets, run as a reader would run them, against a real hub.

Blocks marked ``<!-- test: NAME -->`` on the line before their fence are extracted with
their URL pointed at a hub on port 0: the Python one runs with xrpl-py in a fresh
interpreter, the JavaScript one with Node and the pinned xrpl.js (tests/test_xrpl_js.py
installs it). The README's test command must be .ci/run's, byte for byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import trio

from hub import Hub

from .conftest import eventually, make_config, start_hub
from .readme import README, ROOT
from .test_xrpl_js import JS_DIR, node_binary  # noqa: F401  (a fixture)

URL = "ws://127.0.0.1:6006"
"""The address the README's snippets connect to: the hub's default."""
MARKED = re.compile(r"<!-- test: (\S+) -->\n```(\w+)\n(.*?)\n```\n", re.DOTALL)


def marked_blocks() -> dict[str, tuple[str, str]]:
    """The README's marked blocks: name -> (language, code)."""
    found: dict[str, tuple[str, str]] = {}
    for name, language, code in MARKED.findall(README.read_text()):
        assert name not in found, f"two README blocks are marked {name!r}"
        found[name] = (language, code + "\n")
    return found


def pointed_at(code: str, url: str) -> str:
    assert code.count(URL) == 1, f"the snippet should name {URL} once"
    return code.replace(URL, url)


async def simulated_hub(nursery: trio.Nursery) -> Hub:
    config = make_config(source={"source": "simulator", "ledger_interval": 0.2, "seed": 5})
    node = await start_hub(nursery, config)
    await eventually(lambda: node.node.ledger.index is not None, timeout=20)
    return node


def check_output(stdout: str, node: Hub) -> None:
    lines = stdout.strip().splitlines()
    assert lines[0] == f"hub {version('xrpl-stream-hub')}", stdout
    match = re.fullmatch(r"ledger (\d+) (\d+) transactions", lines[-1])
    assert match, stdout
    assert node.node.ledger.index is not None
    assert int(match[1]) <= node.node.ledger.index
    assert len(lines) == 2, stdout


def test_the_readme_marks_a_python_and_a_javascript_snippet() -> None:
    blocks = marked_blocks()
    assert {name: language for name, (language, _) in blocks.items()} == {
        "xrpl.js": "js",
        "xrpl-py": "python",
    }


async def test_the_readme_xrpl_py_snippet_runs(nursery: trio.Nursery) -> None:
    node = await simulated_hub(nursery)
    _, code = marked_blocks()["xrpl-py"]
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-c", pointed_at(code, node.url)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    check_output(done.stdout.decode(), node)


async def test_the_readme_xrpl_js_snippet_runs(
    nursery: trio.Nursery,
    node_binary: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    node = await simulated_hub(nursery)
    _, code = marked_blocks()["xrpl.js"]
    script = tmp_path / "readme.mjs"
    script.write_text(pointed_at(code, node.url))
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    with trio.fail_after(60):
        done = await trio.run_process(
            [node_binary, str(script)], capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    check_output(done.stdout.decode(), node)


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().rstrip("\n").splitlines()[-1]
    assert ci.startswith("python3 -m venv .venv && ")
    assert f"```sh\n{ci}\n```" in README.read_text()


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
