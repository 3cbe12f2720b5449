"""No I/O in a unit test: a socket, a name lookup or a new process fails it.

Python's audit hooks (PEP 578) see every socket made (``socketpair`` too), every name
resolved and every process started, by any library, from any thread, however it was
imported. An audit hook cannot be removed, so one is added once and acts only while
:data:`GUARD` is armed (``tests/unit/conftest.py`` arms it around each unit test). It
refuses the call with :class:`IOForbidden`, which is no ``OSError``, so no library's
fallback for a failed socket takes it for a network error; and it remembers the call, so
that a refusal some code caught and dropped still fails the test.

One socket is allowed: the socketpair every ``trio.run`` makes to wake itself up.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Final

FORBIDDEN: Final = frozenset(
    {
        "socket.__new__",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.system",
        "os.startfile",
    }
)
TRIO_WAKEUP: Final = os.path.join("trio", "_core", "_wakeup_socketpair.py")


class IOForbidden(RuntimeError):
    """A unit test reached for a socket, the network or a process."""


def _made_by_trio_to_wake_itself() -> bool:
    frame = sys._getframe(2)
    for _ in range(4):  # the hook's caller: socket.__init__ <- socketpair <- trio
        if frame is None:
            return False
        if frame.f_code.co_filename.endswith(TRIO_WAKEUP):
            return True
        frame = frame.f_back
    return False


class Guard:
    """Refuses and records :data:`FORBIDDEN` events while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.seen: list[str] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed or event not in FORBIDDEN:
            return
        if event == "socket.__new__" and _made_by_trio_to_wake_itself():
            return
        what = f"{event}{args[1:] if event == 'socket.__new__' else args}"
        self.seen.append(what)
        raise IOForbidden(f"a unit test may not do I/O: {what} (move it to tests/integration)")

    def take(self) -> list[str]:
        """What was refused since the last call, forgotten."""
        seen, self.seen = self.seen, []
        return seen


GUARD: Final = Guard()
sys.addaudithook(GUARD)
