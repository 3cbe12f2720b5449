"""A resume's replay streams at the socket's pace: the outbox arithmetic without sockets,
then the whole default history through a real hub."""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterable
from typing import Any

import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from hub import Hub
from hub.core.feed import Feed
from hub.core.history import Entry, History
from hub.core.outbox import Outbox
from hub.core.render import Frames
from hub.core.resume import Replay, owed
from hub.core.session import NO_STREAM, Session
from hub.core.subscriptions import parse_change
from hub.edge.connection import Connection
from hub.sources.simulator import LedgerSimulator
from hub.wire.frames import frame_payload
from hub.xrpl import events
from hub.xrpl.books import BookPage, BookQuery
from tests.conftest import eventually, make_config, open_client, start_hub
from tests.samples import ALICE, BOB, CAROL, GATEWAY, ledger_closed, validation, xrp_payment
from tests.test_tls import certs, tls_config  # noqa: F401  (a fixture)
from tests.testca import Certificates
from tests.wsraw import RawClient

USD = {"currency": "USD", "issuer": GATEWAY}

# --- the outbox with a replay attached, sans-IO ----------------------------------------


class Listed:
    """A replay source of given frames that counts what was pulled from it."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = list(frames)
        self.pulled = 0

    @property
    def done(self) -> bool:
        return self.pulled == len(self.frames)

    @property
    def owed_bytes(self) -> int:
        return sum(map(len, self.frames[self.pulled :]))

    def pull(self, max_bytes: int, max_messages: int) -> list[bytes]:
        out: list[bytes] = []
        while self.pulled < len(self.frames) and sum(map(len, out)) < max_bytes:
            if len(out) == max_messages:
                break
            out.append(self.frames[self.pulled])
            self.pulled += 1
        return out


def numbered(tag: str, n: int, size: int = 100) -> list[bytes]:
    return [f"{tag}{i}".encode().ljust(size, b".") for i in range(n)]


def drain(box: Outbox) -> list[bytes]:
    out: list[bytes] = []
    while box:
        out += box.take_frames()
    return out


def test_a_replay_many_times_the_bound_goes_out_a_chunk_at_a_time() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)  # chunks of 250 bytes, 25 messages
    replay = Listed(numbered("r", 40))  # 4 000 bytes
    assert box.push(b"reply")
    assert box.attach(replay)
    assert replay.pulled == 3  # the first chunk only
    assert box.nbytes == 5 + 300
    out: list[bytes] = []
    while box.replaying:
        before = replay.pulled
        out += box.take_frames()
        assert replay.pulled - before <= 3
        assert box.nbytes <= 300
        assert not box.overflowed
    out += box.take_frames()
    assert out == [b"reply", *replay.frames]
    assert not box


def test_live_frames_wait_behind_the_replay_in_the_order_they_came() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    feed.append(b"L0", None)  # before the resume: goes first
    box.push(b"reply")
    replay = Listed(numbered("r", 1000, size=10))  # four chunks
    assert box.attach(replay)
    feed.append(b"L1", None)
    box.push(b"own1")
    feed.append(b"L2", None)
    first = box.take_frames()
    assert first[:2] == [b"L0", b"reply"]
    assert b"L1" not in first
    assert b"own1" not in first
    assert len(first) == 2 + 250
    assert drain(box) == [
        *replay.frames[250:],
        b"L1",
        b"own1",
        b"L2",
    ]
    assert box.cursor == feed.head


def test_the_backlog_is_what_was_pulled_plus_what_waits_behind() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    replay = Listed(numbered("r", 1000))  # 100 kB owed
    assert box.attach(replay)
    assert box.nbytes == 300
    assert len(box) == 3
    for i in range(7):
        feed.append(b"x" * 100, None)
        assert box.within_bounds(), i
    assert box.nbytes == 1000
    feed.append(b"x", None)  # a client that stops reading is still cut
    assert not box.within_bounds()
    assert box.overflowed
    assert not box.replaying
    assert not box


def test_take_tells_the_bytes_it_took_and_the_live_stamp_when_the_replay_ends() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    box.push(b"reply")
    assert box.attach(Listed(numbered("r", 6)))
    feed.append(b"L" * 50, 7.5)
    due = box.take()
    assert due is not None
    frames, nbytes, stamp = due
    assert nbytes == sum(map(len, frames)) == 305
    assert stamp is None  # the live frame is not written yet
    due = box.take()
    assert due is not None
    frames, nbytes, stamp = due
    assert frames[-1] == b"L" * 50
    assert nbytes == 350
    assert stamp == 7.5
    assert not box.replaying


def test_pings_and_pongs_pass_a_replay_and_a_close_never_does() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    replay = Listed(numbered("r", 10))
    box.push(b"reply")
    assert box.attach(replay)
    box.push_control(b"PING", urgent=True)
    box.push_control(b"CLOSE")
    first = box.take_frames()
    assert first == [b"reply", *replay.frames[:3], b"PING"]
    assert drain(box) == [*replay.frames[3:], b"CLOSE"]


def test_a_change_of_feed_during_a_replay_keeps_every_frame_in_order() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    old = Feed(frozenset({"ledger"}), 2, None)
    box.follow(old)
    old.append(b"A0", None)
    box.push(b"reply")
    replay = Listed(numbered("r", 20))
    assert box.attach(replay)
    old.append(b"A1", None)
    box.push(b"own")
    new = Feed(frozenset({"ledger", "validations"}), 2, None)
    box.follow(new)  # a later subscribe while the replay runs
    new.append(b"B0", None)
    assert drain(box) == [b"A0", b"reply", *replay.frames, b"A1", b"own", b"B0"]


def test_two_replays_follow_one_another_with_what_came_between() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    first, second = Listed(numbered("a", 30)), Listed(numbered("b", 30))
    box.push(b"reply1")
    assert box.attach(first)
    feed.append(b"L1", None)
    box.push(b"reply2")
    assert box.attach(second)
    assert second.pulled == 0  # nothing of it is pulled before the first is done
    feed.append(b"L2", None)
    assert drain(box) == [b"reply1", *first.frames, b"L1", b"reply2", *second.frames, b"L2"]


def test_an_empty_replay_leaves_the_outbox_as_it_was() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    box.push(b"reply")
    assert box.attach(Listed([]))
    assert not box.replaying
    assert box.take_frames() == [b"reply"]


Op = tuple[str, int]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.integers(1, 3)),
        st.tuples(st.just("own"), st.integers(1, 3)),
        st.tuples(st.just("replay"), st.integers(0, 40)),
        st.tuples(st.just("take"), st.just(0)),
        st.tuples(st.just("follow"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_any_interleaving_sends_everything_in_the_order_it_came(ops: list[Op]) -> None:
    """Whatever is queued, appended, attached, taken or refollowed: what goes out is
    exactly what was produced, in order, and the backlog never counts what a replay
    still owes."""
    box = Outbox(max_bytes=1 << 30, max_messages=1 << 20)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    produced: list[bytes] = []
    out: list[bytes] = []
    sources: list[Listed] = []
    for n, (op, count) in enumerate(ops):
        if op == "feed":
            frames = numbered(f"f{n}.", count, size=8)
            for frame in frames:
                feed.append(frame, None)
        elif op == "own":
            frames = numbered(f"o{n}.", count, size=8)
            for frame in frames:
                assert box.push(frame)
        elif op == "replay":
            frames = numbered(f"r{n}.", count, size=8)
            sources.append(Listed(frames))
            assert box.attach(sources[-1])
        elif op == "take":
            frames = []
            out += box.take_frames()
        else:
            frames = []
            feed = Feed(frozenset({"ledger", f"s{n}"}), 2, None)
            box.follow(feed)
        produced += frames
        sent = sum(map(len, out))
        owed = sum(source.owed_bytes for source in sources)
        assert box.nbytes == sum(map(len, produced)) - sent - owed
    out += drain(box)
    assert b"".join(out) == b"".join(produced)  # feed frames come joined


# --- the replay source and its routing --------------------------------------------------


def kept(history: History, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        event = events.parse(message)
        history.add(event, Frames(event))


def a_ledger(index: int) -> list[dict[str, Any]]:
    return [
        validation(index, 0),
        ledger_closed(index, 2),
        xrp_payment(index, 0, ALICE, BOB),
        xrp_payment(index, 1, CAROL, BOB),
    ]


def test_a_replay_outlives_the_history_evicting_what_it_owes() -> None:
    history = History(ledgers=3)
    for i in range(1, 4):
        kept(history, a_ledger(i))
    entries = list(history.since(0))
    expected = [entry.frames(2) for entry in entries]
    replay = Replay(entries, 2)
    del entries
    for i in range(4, 10):  # every entry it owes leaves the history
        kept(history, a_ledger(i))
    assert history.resumable_from == 6
    got: list[bytes] = []
    while not replay.done:
        chunk = replay.pull(1, 1000)
        assert len(chunk) == 1  # at least one, and no more once max_bytes is reached
        got += chunk
    assert got == expected
    assert replay.pull(1 << 20, 1000) == []


def test_a_pull_stops_at_either_bound_and_lets_go_of_what_it_sent() -> None:
    history = History(ledgers=10)
    kept(history, a_ledger(1))
    replay = Replay(history.since(0), 1)
    assert len(replay) == 4
    first = replay.pull(1 << 20, 3)
    assert len(first) == 3
    assert len(replay) == 1
    assert b'"ledger_index":"1"' in first[0]  # rendered in API v1
    assert len(replay.pull(1 << 20, 3)) == 1
    assert replay.done


def test_owed_routes_as_live_twice_for_two_matching_streams() -> None:
    history = History(ledgers=10)
    kept(history, a_ledger(1))
    session = Session("test", False, NO_STREAM)
    both = parse_change({"streams": ["transactions", "transactions_proposed"]}, admin=False)
    assert [e.event.kind for e in owed(history.since(0), session, both)] == ["transaction"] * 4
    alice = parse_change({"accounts": [ALICE]}, admin=False)
    (only,) = owed(history.since(0), session, alice)
    assert only.key is not None
    assert only is history.transactions(1)[0]


def test_the_newest_ledger_bounds_a_resume() -> None:
    history = History(ledgers=3)
    assert history.resumable_to is None
    kept(history, a_ledger(7))
    assert (history.resumable_from, history.resumable_to) == (6, 7)
    kept(history, [validation(8, 0)])  # the next ledger's validation, before its close
    assert history.resumable_to == 7
    huge = History(ledgers=3, max_bytes=5_000)
    kept(huge, [ledger_closed(9, 40), *(xrp_payment(9, s) for s in range(40))])
    assert huge.latest is None  # the one ledger was bigger than max_bytes
    assert huge.resumable_to == huge.resumable_from == 9


# --- end to end -------------------------------------------------------------------------

STREAMS = ["ledger", "transactions", "validations", "book_changes"]


@functools.cache
def simulated(ledgers: int) -> list[bytes]:
    """``ledgers`` simulator ledgers (20 transactions each, full metadata), each batch as
    JSON: made once, decoded afresh for each hub (the hub stamps what it publishes)."""
    sim = LedgerSimulator(seed=1, tx_per_ledger=20)
    return [msgspec.json.encode(sim.close_ledger()) for _ in range(ledgers)]


async def publish_ledgers(node: Hub, batches: list[bytes]) -> None:
    for batch in batches:
        await node.publish_batch([events.parse(m) for m in msgspec.json.decode(batch)])
    last = msgspec.json.decode(batches[-1])[-1]["ledger_index"]
    await eventually(lambda: node.node.history.latest == last)


def texts(entries: Iterable[Entry]) -> list[str]:
    """What a v2 subscriber receives of these entries, as text."""
    return [frame_payload(entry.frames(2)).decode() for entry in entries]


async def test_a_reading_client_resumes_the_whole_default_history(nursery: trio.Nursery) -> None:
    """256 ledgers, several times ``send_queue_bytes``, replayed whole to a client that
    reads as clients do; ledgers that close meanwhile (evicting the oldest the replay
    still owes) follow it with no gap and nothing twice."""
    node = await start_hub(nursery)
    history = node.node.history
    batches = simulated(history.ledgers + 8)
    await publish_ledgers(node, batches[:-3])
    since, latest = history.resumable_from, history.latest
    assert since is not None
    assert len({entry.ledger_index for entry in history.since(since)}) == 256
    replayed = texts(history.since(since))
    assert sum(map(len, replayed)) > 3 * node.node.config.limits.send_queue_bytes
    async with open_client(node) as client:
        reply = await client.request(
            {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
        )
        assert reply["result"]["resumed_from"] == since + 1
        assert reply["result"]["resumed_to"] == latest
        assert reply["result"]["resumed_messages"] == len(replayed)
        got = [await client.ws.get_message() for _ in range(100)]
        await publish_ledgers(node, batches[-3:])  # live, while the replay runs
        assert history.resumable_from == since + 3
        live = texts(history.since(history.latest - 3))
        with trio.fail_after(30):
            while len(got) < len(replayed) + len(live):
                got.append(await client.ws.get_message())
        assert got == replayed + live
        assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"
    assert node.node.stats.slow_closes == 0


async def test_a_client_that_stops_reading_during_a_replay_is_still_cut(
    nursery: trio.Nursery,
) -> None:
    """The replay it is owed does not count against the bound; what was pulled for it
    and the live frames waiting behind it do."""
    bound = 256 * 1024
    node = await start_hub(
        nursery, make_config(limits={"send_queue_bytes": bound}, server={"close_timeout": 10})
    )
    batches = simulated(60)
    await publish_ledgers(node, batches[:30])
    history = node.node.history
    since = history.resumable_from
    assert sum(map(len, texts(history.since(0)))) > 4 * bound
    client = await stopped_reader(node.port)
    await client.send_json(
        {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
    )
    reply = await whole_message(client)
    assert reply["result"]["resumed_messages"] == len(history)
    first = [await whole_message(client) for _ in range(3)]
    assert [m["ledger_index"] for m in first] == [since + 1] * 3
    (conn,) = [session.sink for session in node.node.sessions]
    assert isinstance(conn, Connection)
    assert node.node.stats.slow_closes == 0  # owed far past the bound, and not cut
    for i in range(30, 60):  # it reads nothing more; live frames pile up behind
        await publish_ledgers(node, batches[i : i + 1])
        if node.node.stats.slow_closes:
            break
    assert node.node.stats.slow_closes == 1
    assert conn.close_code == 1008
    close = await client.next_close(timeout=10)
    assert close.code == 1008
    await client.aclose()


async def stopped_reader(port: int) -> RawClient:
    """A client with a tiny receive buffer, so that its not reading is soon felt."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    client = RawClient(trio.SocketStream(sock), WSConnection(ConnectionType.CLIENT))
    await client.send(Request(host=f"127.0.0.1:{port}", target="/"))
    assert isinstance(await client.next_event(), AcceptConnection)
    return client


async def whole_message(client: RawClient) -> Any:
    """The next data message, however many pieces wsproto hands it over in."""
    data = ""
    while True:
        event = await client.next_event()
        if isinstance(event, TextMessage):
            data += event.data
            if event.message_finished:
                return msgspec.json.decode(data)


async def test_since_ledger_past_the_newest_is_lgr_not_found(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    await publish_ledgers(node, simulated(3))
    newest = node.node.history.latest
    assert newest is not None
    async with open_client(node) as client:
        for since in (newest + 1, 10**30):
            reply = await client.request(
                {"command": "subscribe", "streams": ["ledger"], "since_ledger": since}
            )
            assert reply["error"] == "lgrNotFound", reply
            assert reply["since_ledger_max"] == newest
            assert reply["since_ledger_min"] == newest - 3
            assert f"since_ledger {newest} at the latest" in reply["error_message"]
        assert node.node.subscriptions.counts()["ledger"] == 0
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger"], "since_ledger": newest}
        )
        assert reply["result"]["resumed_messages"] == 0
        assert (reply["result"]["resumed_from"], reply["result"]["resumed_to"]) == (
            newest + 1,
            newest,
        )
        await publish_ledgers(node, simulated(4)[3:])
        assert (await client.recv())["ledger_index"] == newest + 1


KINDS_OF_SINCE: list[tuple[Any, str]] = [
    (True, "invalidParams"),
    (False, "invalidParams"),
    (2.0, "invalidParams"),
    (-1, "invalidParams"),
    (-(10**30), "invalidParams"),
    ("90000001", "invalidParams"),
    (None, "invalidParams"),
    ([90000001], "invalidParams"),
    ({"ledger_index": 90000001}, "invalidParams"),
    (0, "lgrNotFound"),
    (10**30, "lgrNotFound"),
]


async def test_every_kind_of_since_ledger_is_answered_as_documented(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery)
    await publish_ledgers(node, simulated(2))
    async with open_client(node) as client:
        for since, error in KINDS_OF_SINCE:
            reply = await client.request(
                {"command": "subscribe", "streams": ["ledger"], "since_ledger": since}
            )
            assert reply.get("error") == error, (since, reply)
            assert "since_ledger" in reply["error_message"]
            if error == "lgrNotFound":
                assert reply["since_ledger_min"] == reply["since_ledger_max"] - 2
        assert node.node.subscriptions.counts()["ledger"] == 0


async def test_a_resume_is_charged_for_the_history_it_routes(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(admin={"ips": []}))
    await publish_ledgers(node, simulated(5))
    history = node.node.history
    routed = len(list(history.since(history.latest - 2)))
    async with open_client(node) as client:
        reply = await client.request(
            {"command": "subscribe", "accounts": [ALICE], "since_ledger": history.latest - 2}
        )
        assert reply["result"]["resumed_messages"] == 0
        balance = node.node.load.balance("127.0.0.1")
    assert routed > 40
    assert balance == pytest.approx((20 + 5 + routed) / 32, rel=0.01)  # request, account, replay


async def test_a_resume_over_tls_streams_through_the_writer_task(
    nursery: trio.Nursery,
    certs: Certificates,  # noqa: F811
) -> None:
    """Over TLS a connection writes from a task of its own, not the poller: a replay
    many times the bound goes through it too."""
    bound = 128 * 1024
    node = await start_hub(nursery, tls_config(certs, limits={"send_queue_bytes": bound}))
    await publish_ledgers(node, simulated(20))
    history = node.node.history
    since = history.resumable_from
    replayed = texts(history.since(0))
    assert sum(map(len, replayed)) > 4 * bound
    async with open_client(node, ssl_context=certs.client_context()) as client:
        reply = await client.request(
            {"command": "subscribe", "streams": STREAMS, "api_version": 2, "since_ledger": since}
        )
        assert reply["result"]["resumed_messages"] == len(replayed)
        with trio.fail_after(20):
            got = [await client.ws.get_message() for _ in replayed]
    assert got == replayed


class GatedBooks:
    """A book source that answers only once the test opens its gate."""

    def __init__(self) -> None:
        self.gate = trio.Event()

    async def book_page(self, query: BookQuery) -> BookPage | None:
        await self.gate.wait()
        return BookPage([], None)


async def test_a_resume_that_waited_for_a_snapshot_is_checked_again(
    nursery: trio.Nursery,
) -> None:
    """Ledgers that close while a book snapshot is read may evict ``since_ledger``: the
    resume then fails as documented, not with a silent gap."""
    node = await start_hub(nursery, make_config(history={"ledgers": 2}))
    books = GatedBooks()
    node.node.book_source = books
    await publish_ledgers(node, simulated(3))
    since = node.node.history.resumable_from
    assert since is not None
    async with open_client(node) as client:
        book = {"taker_gets": {"currency": "XRP"}, "taker_pays": USD, "snapshot": True}
        await client.send(
            {"command": "subscribe", "books": [book], "streams": ["ledger"], "since_ledger": since}
        )
        (session,) = node.node.sessions
        await eventually(lambda: session.sink.in_flight == 1)
        await publish_ledgers(node, simulated(5)[3:])
        books.gate.set()
        reply = await client.recv()
        assert reply["error"] == "lgrNotFound", reply
        assert reply["since_ledger_min"] == since + 2
        assert node.node.subscriptions.counts()["ledger"] == 0
