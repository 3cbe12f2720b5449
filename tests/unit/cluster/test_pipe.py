"""The worker pipe's framing (``hub.cluster.pipe``): any chunking, bad frames, one batch a frame."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from hub.cluster.pipe import MAX_FRAME, FrameError, FrameReader, frame, run_pipe


def test_frames_survive_any_chunking() -> None:
    data = frame([{"a": 1}]) + frame([{"b": "x" * 1000}]) + frame({"c": None})
    for size in (1, 3, 7, len(data)):
        reader = FrameReader()
        got = []
        for start in range(0, len(data), size):
            got += reader.feed(data[start : start + size])
        assert got == [[{"a": 1}], [{"b": "x" * 1000}], {"c": None}]
        assert reader.pending == 0


def test_a_frame_that_is_not_one_is_an_error() -> None:
    with pytest.raises(FrameError, match="bytes"):
        FrameReader().feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        FrameReader().feed((3).to_bytes(4, "big") + b"{{{")


async def test_run_pipe_publishes_each_frame_as_one_batch() -> None:
    down_send, down_receive = trio.testing.memory_stream_one_way_pair()
    send, receive = trio.open_memory_channel[Any](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_pipe, send, down_receive)
        await down_send.send_all(frame([1, 2]) + frame([3]))
        assert await receive.receive() == [1, 2]
        assert await receive.receive() == [3]
        await down_send.aclose()
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()
