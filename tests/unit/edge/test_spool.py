"""Spooled buffers without sockets: what is spooled, both where tee and splice exist and on
the portable path (``spool_path``), and a feed that spools for several readers."""

from __future__ import annotations

import errno
import os

import pytest

from hub.core.feed import Feed
from hub.edge import spool
from hub.edge.spool import Spooled
from tests.helpers.samples import SPOOLABLE


def test_small_buffers_stay_plain_bytes(spool_path: str) -> None:
    small = b"x" * (spool.MIN_BYTES - 1)
    assert spool.spool(small) is small


def test_only_the_splice_path_spools_a_large_buffer(spool_path: str) -> None:
    data = spool.spool(SPOOLABLE)
    assert data == SPOOLABLE
    if spool_path == "portable":
        assert data is SPOOLABLE
    else:
        assert type(data) is Spooled
        assert data.covered == len(SPOOLABLE)
        data.close()


def test_without_a_descriptor_to_spare_the_bytes_stay_plain(
    monkeypatch: pytest.MonkeyPatch, spool_path: str
) -> None:
    spool.spool(SPOOLABLE)  # the process's staging pipe exists before descriptors run out

    def exhausted(flags: int = 0) -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe2", exhausted)
    assert spool.spool(SPOOLABLE) is SPOOLABLE


def test_a_feed_spools_for_several_readers_and_closes_when_it_moves_on(
    spool_path: str,
) -> None:
    feed = Feed(frozenset({"transactions"}), 2, None, spool.JOIN)
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(SPOOLABLE, None)
    alone = feed.joined(0)
    assert type(alone) is bytes  # one reader: nothing to share
    feed.readers.add(object())  # type: ignore[arg-type]
    feed.append(SPOOLABLE, None)
    shared = feed.joined(0)
    assert shared == SPOOLABLE * 2
    assert feed.joined(0) is shared
    if spool_path == "portable":
        assert type(shared) is bytes
        return
    assert type(shared) is Spooled
    assert shared.fd >= 0
    feed.append(b"c", None)
    assert feed.joined(2) == b"c"
    assert shared.fd == -1
    again = feed.joined(0)
    assert type(again) is Spooled
    feed.trim(3)
    assert again.fd == -1
