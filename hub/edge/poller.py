"""One task that waits for every blocked socket to take bytes again.

A socket whose send buffer is full must be written again once the kernel has room.
With a task per such socket, a ledger close to 10 000 subscribers whose bursts
overflow their buffers starts (or wakes) 10 000 tasks, and starting them is most of
the cost: objects for the garbage collector, scheduling, a parking lot each. Instead
every plain socket that would block is armed once in one ``epoll`` set of the hub's
(one-shot, so a socket is reported once per arming), and a single task, waiting on
that set's own descriptor through trio, calls each ready socket's callback in a
batch. An idle connection owns nothing here; a blocked one costs a dict entry.

Linux only (``select.epoll``); elsewhere :attr:`WritePoller.available` is False and
a connection falls back to a writer task of its own.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Final

import trio

_BATCH: Final = 1024
"""Ready sockets taken from the set per ``epoll_wait``."""


class WritePoller:
    """Blocked sockets armed for writability, and their callbacks; :meth:`run` serves.
    Its owner closes it after every connection that used it has ended."""

    available: Final = hasattr(select, "epoll")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._waiting: dict[int, Callable[[], None]] = {}
        self._registered: set[int] = set()

    def __len__(self) -> int:
        """Sockets armed now."""
        return len(self._waiting)

    def wait(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, from :meth:`run`, when ``sock`` can take bytes."""
        fd = sock.fileno()
        mask = select.EPOLLOUT | select.EPOLLONESHOT
        if fd in self._registered:
            self._epoll.modify(fd, mask)
        else:
            self._epoll.register(fd, mask)
            self._registered.add(fd)
        self._waiting[fd] = callback

    def forget(self, sock: socket.socket) -> None:
        """Drop ``sock`` before it is closed (its descriptor number will be reused)."""
        fd = sock.fileno()
        self._waiting.pop(fd, None)
        if fd in self._registered:
            self._registered.discard(fd)
            self._epoll.unregister(fd)

    def ready(self) -> int:
        """Call back every socket the kernel reports writable now; how many it did."""
        done = 0
        while True:
            events = self._epoll.poll(0, _BATCH)
            for fd, _mask in events:
                callback = self._waiting.pop(fd, None)
                if callback is not None:
                    callback()
            done += len(events)
            if len(events) < _BATCH:
                return done

    async def run(self) -> None:
        """Serve until cancelled."""
        while True:
            await trio.lowlevel.wait_readable(self._epoll.fileno())
            self.ready()

    def close(self) -> None:
        """Close the set, once no connection can arm or forget a socket any more."""
        self._epoll.close()
