"""Spooled buffers without sockets: what is spooled, and a feed that spools for several readers."""

from __future__ import annotations

import errno
import os
import random

import pytest

from hub.core.feed import Feed
from hub.edge import spool
from hub.edge.spool import Spooled

pytestmark = pytest.mark.skipif(not spool.available, reason="tee/splice are Linux-only")


BIG = random.Random(15).randbytes(102_400)  # over spool.MIN_BYTES; no period to hide a shift


def test_small_buffers_stay_plain_bytes() -> None:
    small = b"x" * (spool.MIN_BYTES - 1)
    assert spool.spool(small) is small


def test_without_a_descriptor_to_spare_the_bytes_stay_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool.spool(BIG)  # the process's staging pipe exists before descriptors run out

    def exhausted(flags: int = 0) -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe2", exhausted)
    assert spool.spool(BIG) is BIG


def test_a_feed_spools_for_several_readers_and_closes_when_it_moves_on() -> None:
    feed = Feed(frozenset({"transactions"}), 2, None)
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(BIG, None)
    alone = feed.joined(0)
    assert type(alone) is bytes  # one reader: nothing to share
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(BIG, None)
    shared = feed.joined(0)
    assert type(shared) is Spooled
    assert feed.joined(0) is shared
    assert shared == BIG * 2
    assert shared.fd >= 0
    feed.append(b"c", None)
    assert feed.joined(2) == b"c"
    assert shared.fd == -1
    again = feed.joined(0)
    assert type(again) is Spooled
    feed.trim(3)
    assert again.fd == -1
