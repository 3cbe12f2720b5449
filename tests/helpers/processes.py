"""``python -m hub`` as a real process: started, its output read as it comes, killed."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

STARTUP = 15  # seconds for a cold interpreter to import and bind, on a busy CI machine
LISTENING = re.compile(r"listening on (wss?://(\d+\.\d+\.\d+\.\d+):(\d+))\n")


class HubProcess:
    """A running ``python -m hub`` with its stdout and stderr collected as they come."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.stdout = b""
        self.stderr = b""
        self._line = trio.Event()

    async def _drain_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for chunk in self.proc.stdout:
            self.stdout += chunk
            if b"\n" in self.stdout:
                self._line.set()
        self._line.set()  # EOF: listening() must not wait for a line that never comes

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for chunk in self.proc.stderr:
            self.stderr += chunk

    async def listening(self) -> tuple[str, str, int]:
        """The URL, host and port of the one line ``hub serve`` prints when it is ready."""
        with trio.fail_after(STARTUP):
            await self._line.wait()
        first = self.stdout.decode().partition("\n")[0] + "\n"
        match = LISTENING.fullmatch(first)
        assert match, f"no listening line; stdout={self.stdout!r} stderr={self.stderr!r}"
        return match[1], match[2], int(match[3])

    async def exit_code(self, within: float) -> int:
        with trio.fail_after(within):
            return await self.proc.wait()


@asynccontextmanager
async def hub_process(*args: str, **popen: Any) -> AsyncIterator[HubProcess]:
    """``python -m hub ARGS``; killed on exit if still running. Output is complete after.
    ``popen``: more arguments for the process (``preexec_fn``, say)."""
    command = [sys.executable, "-m", "hub", *args]
    async with trio.open_nursery() as nursery:
        proc = await nursery.start(
            partial(
                trio.run_process,
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                **popen,
            )
        )
        running = HubProcess(proc)
        nursery.start_soon(running._drain_stdout)
        nursery.start_soon(running._drain_stderr)
        try:
            yield running
        finally:
            if proc.returncode is None:
                proc.kill()


def serve(*args: str) -> tuple[str, ...]:
    return ("serve", "--port", "0", "--source", "none", *args)


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return str(path)


async def hub_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m hub ARGS`` to the end, its output captured."""
    with trio.fail_after(STARTUP):
        return await trio.run_process(
            [sys.executable, "-m", "hub", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
