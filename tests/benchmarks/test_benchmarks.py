"""The benchmark tool: its wire code and stream verification, then every scenario end to end.

The unit tests feed bytes to the load generator's client code and to its verification
(reference subscriber + XXH3 raw readers) without sockets. The smoke run is not a
timed test: the figures are not checked, only that ``python -m benchmarks --smoke``
runs every scenario against the hub and the peers it can run, writes its JSON, prints
the load generator's CPU, and that every subscriber got every message it should have,
once and in order — the raw readers' streams byte-identical to their reference's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from wsproto.frame_protocol import FrameProtocol, Opcode

from benchmarks import loadgen, report, runner, scenarios, wire
from benchmarks.messages import Messages
from benchmarks.peers.raw_peer import text_frame
from hub.wire.deflate import DeflateParams, compressed_text_frame
from tests.helpers.paths import ROOT
from tests.helpers.redis_server import need_redis

SCENARIOS = set(scenarios.NAMES)


def _client_frames(data: bytes) -> list[tuple[Opcode, bytes]]:
    """Parse client frames with wsproto, an independent implementation."""
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(data)
    return [
        (f.opcode, f.payload.encode() if isinstance(f.payload, str) else bytes(f.payload))
        for f in server.received_frames()
    ]


def test_accept_key_matches_rfc_6455_example() -> None:
    # RFC 6455 section 1.3 works this key through to this answer.
    assert wire.accept_for(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_problem_checks_status_and_accept() -> None:
    key = wire.new_key()
    good = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    good += b"Sec-WebSocket-Accept: " + wire.accept_for(key) + b"\r\n\r\n"
    assert wire.handshake_problem(good, key) is None
    assert wire.handshake_problem(good, wire.new_key()) == "wrong Sec-WebSocket-Accept"
    refused = wire.handshake_problem(b"HTTP/1.1 429 Too Many Requests\r\n\r\n", key)
    assert refused is not None
    assert "429" in refused
    assert wire.split_head(good[:-1]) is None
    assert wire.split_head(good + b"\x81\x00") == (good, b"\x81\x00")


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_client_frame_is_masked_and_parses(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = wire.client_frame(payload, opcode=wire.BINARY)
    assert frame[1] & 0x80
    assert _client_frames(frame) == [(Opcode.BINARY, payload)]


def test_ping_ring_gives_distinct_ids_in_order_and_wraps() -> None:
    ring = wire.PingRing(size=8, base=100)
    sent = ring.take(5) + ring.take(5)
    frames = _client_frames(sent)
    ids = [json.loads(p)["id"] for _, p in frames]
    assert ids == [100, 101, 102, 103, 104, 105, 106, 107, 100, 101]
    assert all(json.loads(p)["command"] == "ping" for _, p in frames)


def test_frame_parser_in_any_pieces_gives_frames_and_end_offsets() -> None:
    payloads = [b"a" * 5, b"b" * 200, b"c" * 70000, b""]
    stream = b"".join(text_frame(p) for p in payloads)
    ends = []
    total = 0
    for p in payloads:
        total += len(text_frame(p))
        ends.append(total)
    for step in (1, 3, 1000, len(stream)):
        parser = wire.FrameParser()
        got = []
        for i in range(0, len(stream), step):
            got += parser.feed(stream[i : i + step])
        assert got == [(wire.TEXT, p, e) for p, e in zip(payloads, ends, strict=True)]
        assert parser.pending == 0


def test_frame_parser_rejects_masked_and_fragmented_frames() -> None:
    with pytest.raises(wire.FrameError, match="masked"):
        wire.FrameParser().feed(wire.client_frame(b"x"))
    with pytest.raises(wire.FrameError, match="unsupported"):
        wire.FrameParser().feed(b"\x01\x01x")


def test_a_deflate_handshake_offers_it_and_needs_no_server_context_back() -> None:
    key = wire.new_key()
    request = wire.handshake_request("127.0.0.1", 80, "/", key, deflate=True)
    assert (
        b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n" in request
    )
    assert request.endswith(b"\r\n\r\n")
    head = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + wire.accept_for(key)
    agreed = b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"
    assert wire.handshake_problem(head + agreed + b"\r\n\r\n", key, deflate=True) is None
    declined = wire.handshake_problem(head + b"\r\n\r\n", key, deflate=True)
    assert declined is not None
    assert "not agreed" in declined
    assert wire.handshake_problem(head + b"\r\n\r\n", key) is None


def _deflated(payloads: list[bytes]) -> bytes:
    """Frames as the hub sends them to a permessage-deflate subscriber."""
    params = DeflateParams()
    return b"".join(compressed_text_frame(p, params) for p in payloads)


def test_an_inflating_parser_gives_the_messages_and_wire_end_offsets() -> None:
    build = Messages(0)
    payloads = [build.transaction(s, 10**18, 1000) for s in (1, 2, 3)] + [b"tiny"]
    stream = _deflated(payloads)
    assert stream[0] & 0x40  # RSV1: compressed
    assert len(stream) < sum(len(p) for p in payloads) / 1.5
    got = []
    parser = wire.FrameParser(inflate=True)
    for i in range(0, len(stream), 97):
        got += parser.feed(stream[i : i + 97])
    assert [p for _, p, _ in got] == payloads
    assert got[-1][2] == len(stream)
    with pytest.raises(wire.FrameError, match="unsupported"):
        wire.FrameParser().feed(stream)


def test_count_marker_counts_a_marker_split_over_reads_once() -> None:
    marker = b'"type":"response"'
    stream = b'{"id":1,"type":"response"}' * 50
    for step in (1, 7, 17, 100):
        tail, total = b"", 0
        for i in range(0, len(stream), step):
            n, tail = wire.count_marker(tail, stream[i : i + step], marker)
            total += n
        assert total == 50


def test_arrival_latencies_take_the_read_that_brought_the_last_byte() -> None:
    reads_end = loadgen.array("q", [100, 250, 400])
    reads_at = loadgen.array("q", [1_000, 2_000, 3_000])
    ends = np.array([50, 100, 101, 400])
    sent = np.array([900, 900, 900, 2_500])
    assert list(loadgen.arrival_latencies(reads_end, reads_at, ends, sent)) == [
        100,
        100,
        1_100,
        500,
    ]
    with pytest.raises(ValueError, match="past the last read"):
        loadgen.arrival_latencies(reads_end, reads_at, np.array([401]), np.array([0]))


def test_by_ledger_keeps_one_histogram_per_publish_stamp() -> None:
    ms = 1 << loadgen.LEDGER_SHIFT  # one bucket
    latencies = np.array([0, ms, ms + 1, 5 * ms, 2 * ms, -1])
    sent = np.array([7, 7, 7, 7, 9, 9])
    assert loadgen.by_ledger(latencies, sent) == {7: {0: 1, 1: 2, 5: 1}, 9: {0: 1, 2: 1}}
    many = np.arange(loadgen.MAX_LEDGERS + 1)
    assert loadgen.by_ledger(many, many) == {}


def test_warm_up_ledgers_are_left_out_of_the_latencies_by_publish_stamp() -> None:
    latencies = np.array([5, 6, 7, 8, 9])
    sent = np.array([30, 10, 10, 20, 30])  # three ledgers, by stamp 10 < 20 < 30
    assert list(loadgen.after_warmup(latencies, sent, 0)) == [5, 6, 7, 8, 9]
    assert list(loadgen.after_warmup(latencies, sent, 1)) == [5, 8, 9]
    assert list(loadgen.after_warmup(latencies, sent, 2)) == [5, 9]
    assert len(loadgen.after_warmup(latencies, sent, 3)) == 0


def test_the_latency_scenarios_publish_their_warm_up_ledger_on_top() -> None:
    burst = scenarios.full()["burst"]
    assert burst.warmup == scenarios.WARMUP == 1
    assert burst.publisher_params()["ledgers"] == 10 + 1  # 35 s at one every 3.5 s
    assert scenarios.full()["mainnet"].warmup == 1
    assert scenarios.full()["delivery"].warmup == 0


def test_per_ledger_figures_merge_the_workers_and_follow_publish_order() -> None:
    shift = loadgen.LEDGER_SHIFT
    first = {20: {0: 99, 3: 1}, 10: {1: 50}}
    second = {10: {1: 49, 9: 1}, 20: {0: 100}}
    figures = report.per_ledger_ms([first, second])
    edge = [((b + 1) << shift) / 1e6 for b in range(10)]
    assert figures["p99"] == [round(edge[1], 3), round(edge[0], 3)]
    assert figures["max"] == [round(edge[9], 3), round(edge[3], 3)]
    assert report.per_ledger_ms([{}, {}]) == {"p99": [], "max": []}


def test_latency_figures_report_the_warm_up_ledgers_apart() -> None:
    hist = {0: 98, 2: 1, 9: 1}  # merged overall histogram: bucket 9 is the 100th sample
    results = [
        {"hist": hist, "slow": [], "ledgers": {10: {5: 1}, 20: {0: 50}}},
        {"hist": {}, "slow": [], "ledgers": {20: {1: 50}, 30: {2: 1}}},
    ]
    figures = report.latency_figures(results, warmup=1)
    ledger_ms = [round(((b + 1) << loadgen.LEDGER_SHIFT) / 1e6, 3) for b in range(6)]
    assert figures["warmup_ms"] == {"p99": [ledger_ms[5]], "max": [ledger_ms[5]]}
    assert figures["ledgers_ms"]["max"] == [ledger_ms[1], ledger_ms[2]]
    assert figures["latency_ms"]["max"] == round((10 << loadgen.HIST_SHIFT) / 1e6, 3)
    assert figures["with_warmup_ms"]["max"] == ledger_ms[5]  # the warm-up ledger's 5
    assert figures["with_warmup_ms"]["p50"] == ledger_ms[1]  # 50 of the 102 at 0, 50 at 1
    unwarmed = report.latency_figures(results, warmup=0)
    assert unwarmed["ledgers_ms"]["max"][0] == ledger_ms[5]
    assert unwarmed["with_warmup_ms"] is None


def _stream(seqs: list[int], api_version: int = 2) -> bytes:
    build = Messages(600)
    body = [build.transaction(s, 10**18 + s, 1000) for s in seqs]
    if api_version == 1:
        body = [m.replace(b'"tx_json":', b'"transaction":') for m in body]
    return b"".join(text_frame(m) for m in body)


class _Transport:
    """Just enough transport for a connection fed by hand: counts pauses."""

    def __init__(self) -> None:
        self.pauses = 0

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        pass


def _group(streams: list[bytes], chunk: int, compression: bool = False) -> dict[str, int]:
    """A worker whose first connection is the reference; each gets its stream in chunks."""

    async def run() -> dict[str, int]:
        worker = loadgen.Worker(0, [0], [0], [0], None)  # type: ignore[arg-type]
        worker.compression = compression
        conns = [loadgen.SubConn(worker, i, 2, b"") for i in range(len(streams))]
        worker.conns = conns
        worker.form_groups(rendering=True)
        worker.read_pause = 0.005
        transports = [_Transport() for _ in conns]
        for conn, data, transport in zip(conns, streams, transports, strict=True):
            conn.transport = transport  # type: ignore[assignment]
            conn.state = loadgen.STREAM
            for i in range(0, len(data), chunk):
                piece = data[i : i + chunk]
                worker.view[: len(piece)] = piece
                conn.buffer_updated(len(piece))
        totals = dict.fromkeys(loadgen.TOTALS, 0)
        latencies: list[Any] = []
        stamps: list[Any] = []
        worker.tally(worker.groups[0], lambda index: 5, totals, latencies, stamps)
        totals["latency_samples"] = sum(len(x) for x in latencies)
        assert [len(x) for x in stamps] == [len(x) for x in latencies]
        totals["reference_pauses"] = transports[0].pauses
        totals["raw_pauses"] = sum(t.pauses for t in transports[1:])
        return totals

    return asyncio.run(run())


def test_a_worker_that_coalesces_sleeps_once_per_loop_pass_that_read_stream_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    naps: list[float] = []
    monkeypatch.setattr(loadgen.time, "sleep", naps.append)
    data = _stream([1, 2, 3])

    async def run() -> None:
        worker = loadgen.Worker(0, [0], [0], [0], None)  # type: ignore[arg-type]
        conns = [loadgen.SubConn(worker, i, 2, b"") for i in range(3)]
        worker.conns = conns
        worker.form_groups(rendering=True)
        worker.coalesce = 0.0005

        def one_pass() -> None:
            for conn in conns:
                conn.state = loadgen.STREAM
                worker.view[: len(data)] = data
                conn.buffer_updated(len(data))

        one_pass()  # three reads in one pass: one nap after it
        await asyncio.sleep(0)
        assert naps == [0.0005]
        one_pass()
        await asyncio.sleep(0)
        assert naps == [0.0005, 0.0005]
        await asyncio.sleep(0)  # a pass that read nothing does not sleep
        assert len(naps) == 2
        worker.coalesce = 0.0
        one_pass()
        await asyncio.sleep(0)
        assert len(naps) == 2

    asyncio.run(run())


def test_raw_readers_with_the_reference_bytes_are_verified() -> None:
    good = _stream([1, 2, 3, 4, 5])
    totals = _group([good, good, good], chunk=333)
    assert totals["references"] == 1
    assert totals["verified"] == 2
    assert totals["received"] == 15
    assert totals["lost"] == totals["diverged"] == totals["wrong"] == 0
    assert totals["latency_samples"] == 15
    # Small reads pause raw readers (to batch the next read), never the reference.
    assert totals["reference_pauses"] == 0
    assert totals["raw_pauses"] > 0


def test_compressed_streams_are_inflated_by_the_reference_and_digest_checked_raw() -> None:
    build = Messages(0)
    messages = [build.transaction(s, 10**18 + s, 1000) for s in range(1, 6)]
    good = _deflated(messages)
    swapped = _deflated([messages[i] for i in (0, 2, 1, 3, 4)])
    totals = _group([good, good, swapped], chunk=400, compression=True)
    assert totals["references"] == 1
    assert totals["verified"] == 1
    assert totals["diverged"] == 1
    assert totals["received"] == 15
    assert totals["wrong"] == totals["gaps"] == 0
    assert totals["wire_bytes"] == 3 * len(good)


def test_a_reordered_or_short_raw_stream_is_caught_by_its_digest_and_length() -> None:
    good = _stream([1, 2, 3, 4, 5])
    swapped = _stream([1, 3, 2, 4, 5])
    assert len(swapped) == len(good)
    assert xxhash.xxh3_64_intdigest(swapped) != xxhash.xxh3_64_intdigest(good)
    totals = _group([good, swapped, good[:-10]], chunk=1000)
    assert totals["verified"] == 0
    assert totals["diverged"] == 2
    assert totals["lost"] == 1  # the short stream's last message never arrived


def test_the_reference_catches_gaps_reordering_and_a_wrong_rendering() -> None:
    gap = _group([_stream([1, 2, 4, 5])], chunk=500)
    assert (gap["gaps"], gap["lost"]) == (1, 1)
    back = _group([_stream([1, 2, 3, 5, 4])], chunk=500)
    assert back["out_of_order"] == 1
    assert back["lost"] == 1
    v1_for_v2 = _group([_stream([1, 2, 3, 4, 5], api_version=1)], chunk=500)
    assert v1_for_v2["wrong"] == 1


def test_loadgen_bound_by_average_peak_or_busiest_process() -> None:
    calm = {
        "loadgen_cpu_percent": 60.0,
        "loadgen_cpu_peak_percent": 70.0,
        "loadgen_cpu_per_process": [30.0, 30.0],
    }
    assert not runner.loadgen_bound(calm, cores=1)
    assert runner.loadgen_bound({**calm, "loadgen_cpu_peak_percent": 85.0}, cores=1)
    assert runner.loadgen_bound({**calm, "loadgen_cpu_per_process": [81.0]}, cores=2)
    assert not runner.loadgen_bound({**calm, "loadgen_cpu_peak_percent": 150.0}, cores=2)


def test_smoke_run_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert set(results["scenarios"]) == SCENARIOS
    for name, scenario in results["scenarios"].items():
        assert "hub" in scenario["runs"], name
        for server, run in scenario["runs"].items():
            assert run["lost"] == 0, (name, server, run)
            assert run["opened"] == run["connections"], (name, server)
            assert run["received"] > 0, (name, server)
            assert run["loadgen_cpu_per_process"], (name, server)
            if name not in ("requests", "filters"):
                # Raw readers were compared with a reference, and all matched.
                assert run["verified"] > 0, (name, server)
                assert run["diverged"] == 0, (name, server)
    assert {"hub", "raw", "websockets"} <= set(results["scenarios"]["delivery"]["runs"])
    deflate = results["scenarios"]["delivery-deflate"]
    plain, packed = deflate["runs"]["hub"], deflate["runs"]["hub-deflate"]
    assert packed["wire_bytes_per_delivery"] < plain["wire_bytes_per_delivery"] / 1.5
    assert deflate["compression"]["wire_bytes_per_delivery"] < 0.67
    assert "hub-deflate/hub: wire bytes per delivery" in done.stdout
    assert results["scenarios"]["idle-workers"]["runs"]["hub"]["workers"] == 3
    burst = results["scenarios"]["burst"]["runs"]["hub"]
    assert len(burst["warmup_ms"]["p99"]) == 1  # reported apart from the measured ledgers
    assert len(burst["ledgers_ms"]["p99"]) == 2  # 1 s at one every 0.5 s
    assert "warm-up ledger p99" in done.stderr
    assert burst["with_warmup_ms"]["max"] >= burst["warmup_ms"]["max"][0]
    assert "µs/deliv" in done.stdout
    assert "loadgen %" in done.stdout


def test_compression_benchmark_measures_shared_deflate() -> None:
    from benchmarks.compression import measure

    figures = measure(ledgers=3, subscribers=100)
    assert figures["compressed_bytes_per_message"] < figures["plain_bytes_per_message"]
    assert figures["ratio"] > 1.5  # the simulator's JSON deflates well
    assert figures["compress_us_per_delivery"] > 0


def test_failover_benchmark_kills_a_leader_and_checks_every_stream() -> None:
    need_redis()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.failover", "--kills", "2", "--lease", "1",
         "--ledger-interval", "0.3", "--tx-per-ledger", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    summary = lines[-1]
    assert summary["kills"] == 2
    assert summary["ledgers_repeated_or_skipped"] == 0
    assert summary["ledgers_short_of_transactions"] == 0
    assert all(kill["next_ledger_s"] > 0 for kill in lines[:2])
