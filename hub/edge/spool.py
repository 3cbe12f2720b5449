"""One buffer for many sockets, sent without copying it once per socket.

Fan-out writes the same joined batch to every subscriber of a feed. With ``send`` the
kernel copies it into fresh socket-buffer memory once per subscriber: for a
121 kB ledger to 1 000 subscribers that is 121 MB allocated and copied, most of a
burst's time. A :class:`Spooled` buffer is also written, once, into a
pipe of its own, which then holds it in pipe pages. To send it, ``tee`` puts references
to those pages into a staging pipe and ``splice`` moves them into the socket: each
subscriber costs the kernel its headers and bookkeeping, not a copy. The pipe is never
written again, so what a socket still holds stays what was sent.

Why pipes rather than ``sendfile`` from a memory file: ``sendfile`` looks every 4 KiB
page up in the file again for each socket, while ``tee`` copies a pipe's page
references as they are (the benchmark docs give the figures). At 16 kB and below a copy
costs no more, so smaller buffers are not spooled.

A :class:`Spooled` is a ``bytes`` as well, so everything else (a partial write's view,
TLS, a writer task) uses it as the bytes it is. A pipe holds at most its capacity
(1 MiB unless the host allows more): a longer buffer is spooled up to that, and a
socket that takes all of it gets the rest as a partial write's plain bytes. Its owner
closes it; a closed one, or a socket ``splice`` cannot write to, falls back to ``send``.
Linux only: elsewhere, or when no descriptor is left, :func:`spool` returns the plain
bytes. A pipe's capacity counts against its user's ``fs.pipe-user-pages-soft`` (64 MiB
by default; only a feed's current batches are spooled); past it new pipes are two pages,
too small to spool, and batches go as plain bytes.

:data:`JOIN` is the join the edge hands the node's feeds (:class:`hub.core.feed.Join`):
it spools a batch that more than one reader shares, and closes the pipe when the feed
moves on.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import socket
from collections.abc import Iterable
from typing import Any, Final

MIN_BYTES: Final = 16 * 1024
"""Below this a copy costs the kernel no more than splicing page references."""

_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_GETPIPE_SZ: Final = getattr(fcntl, "F_GETPIPE_SZ", 1032)
_NONBLOCK: Final = 2  # SPLICE_F_NONBLOCK
_UNSUPPORTED: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


def _libc_tee() -> Any:
    try:
        tee = ctypes.CDLL(None, use_errno=True).tee
    except (AttributeError, OSError):
        return None
    tee.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint)
    tee.restype = ctypes.c_ssize_t
    return tee


_tee: Final[Any] = _libc_tee() if hasattr(os, "splice") else None
available: Final = _tee is not None


class _Stage:
    """The process's staging pipe (each send ``tee``s into it and empties it) and
    ``/dev/null``, where what a full socket did not take is spliced away."""

    def __init__(self) -> None:
        self.null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            self.read, self.write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            os.close(self.null)
            raise
        try:
            self.capacity = fcntl.fcntl(self.write, _SETPIPE_SZ, 1 << 20)
        except OSError:  # the host allows less: keep what the pipe has
            self.capacity = fcntl.fcntl(self.write, _GETPIPE_SZ)

    def send(self, source: int, covered: int, sock: socket.socket) -> int:
        """Send the ``covered`` bytes ``source`` holds, without consuming them; raises
        BlockingIOError when the socket takes nothing."""
        staged = _tee(source, self.write, covered, _NONBLOCK)
        if staged <= 0:
            raise OSError(ctypes.get_errno() or errno.EINVAL, "tee")
        try:
            sent = os.splice(self.read, sock.fileno(), staged, flags=_NONBLOCK)
        except OSError:
            self.discard(staged)
            raise
        if sent < staged:
            self.discard(staged - sent)
        return sent

    def discard(self, count: int) -> None:
        while count > 0:
            count -= os.splice(self.read, self.null, count)


@functools.cache
def _staged() -> _Stage:
    return _Stage()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_staged.cache_clear)


class Spooled(bytes):
    """Bytes whose first :attr:`covered` bytes a pipe also holds (:attr:`fd`, its read
    end, -1 once closed)."""

    fd: int
    covered: int

    def __new__(cls, data: bytes, fd: int, covered: int) -> Spooled:
        self = super().__new__(cls, data)
        self.fd = fd
        self.covered = covered
        return self

    def send(self, sock: socket.socket) -> int:
        """Write as much as ``sock`` takes now, from the pipe's pages; raises
        BlockingIOError when it takes nothing, OSError when the peer is gone."""
        if self.fd >= 0:
            try:
                return _staged().send(self.fd, self.covered, sock)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
        return sock.send(self)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def spool(data: bytes) -> bytes:
    """``data`` as a :class:`Spooled` when it is worth it and a pipe can be made;
    otherwise ``data`` itself."""
    if not available or len(data) < MIN_BYTES:
        return data
    try:
        stage = _staged()
        read, write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return data
    try:
        with contextlib.suppress(OSError):  # else it keeps the size it was made with
            fcntl.fcntl(write, _SETPIPE_SZ, min(len(data), stage.capacity))
        covered = os.write(write, data)
    except OSError:
        covered = 0
    finally:
        os.close(write)
    if covered < MIN_BYTES:
        os.close(read)
        return data
    return Spooled(data, read, covered)


def send(sock: socket.socket, data: bytes | memoryview) -> int:
    """``sock.send(data)``, from a pipe's pages when ``data`` is spooled."""
    if type(data) is Spooled:
        return data.send(sock)
    return sock.send(data)


class Spooling:
    """The feeds' join at the edge: a buffer for more than one reader is spooled; a
    released one's pipe is closed (a socket still sending it keeps its pages; a reader
    still holding it falls back to ``send``)."""

    def __call__(self, frames: list[bytes], readers: int) -> bytes:
        data = b"".join(frames)
        return spool(data) if readers > 1 else data

    def release(self, joined: Iterable[bytes]) -> None:
        for data in joined:
            if type(data) is Spooled:
                data.close()


JOIN: Final = Spooling()
