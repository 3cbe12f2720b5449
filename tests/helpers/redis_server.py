"""A real ``redis-server`` on a free port for the cluster tests, stopped and started at will.

Locally the tests that need one are skipped when ``redis-server`` is not installed;
under CI (``CI=true``) they fail instead, since ``.ci/run`` installs it.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import trio

from tests.helpers.programs import free_port, need_program


def need_redis() -> str:
    """The path of ``redis-server``; skip (or under CI fail) when it is not installed."""
    return need_program("redis-server", "redis-server")


class RedisServer:
    """One redis-server process; ``persistent`` keeps its data across restarts (AOF)."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.binary = need_redis()
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.directory), "--daemonize", "no"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )

    async def ready(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the server answers PING."""
        with trio.fail_after(timeout):
            while not await self._pong():  # noqa: ASYNC110 - a process we do not own
                await trio.sleep(0.02)

    async def _pong(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            try:
                await stream.send_all(b"PING\r\n")
                return (await stream.receive_some(64)).startswith(b"+PONG")
            except trio.BrokenResourceError:
                return False

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (the append-only file is flushed when persistent)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections hang, as with a Redis host that stopped answering."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
