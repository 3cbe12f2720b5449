"""Many hub nodes on one Redis: every event in one global order, on every node, once.

The rules of this file:

- **Nodes never fan out what they publish themselves.** An event a node's source or
  an admin ``publish`` produces is appended to Redis; every node, the publisher
  included, delivers events only as it reads them back. So every node delivers the
  same events in the same order.
- **One global order across the per-kind streams.** Each event kind has its own Redis
  Stream (``{hub}:events:<kind>``, bounded by ``MAXLEN ~``). A Lua script, which Redis
  runs atomically, takes a batch of events, numbers them from one counter
  (``{hub}:seq``) and appends each with the stream ID ``<seq>-0``. A reader asks for
  every stream in one ``XREAD`` from the last sequence number it applied and applies
  what comes back sorted by sequence (:func:`merge`). Because the script is atomic,
  once entry *n* is visible every entry before it is too; with ``COUNT`` a stream may
  be cut short, so entries past the shortest cut wait for the next read. Only a
  non-blocking ``XREAD`` is such a snapshot: a blocked one is answered with just the
  stream that woke it, so it serves only as the signal to read again.
- **One resume point.** Everything up to the last applied sequence has been applied
  (entries arrive without gaps), so one number is the position in every stream; a
  node that lost Redis reads on from it when Redis is back (:func:`resume`).
- **Exactly once, even when a reply is lost.** A write that timed out may still have
  happened. Each writer (one per node, a random ``node_id``) numbers its batches, and
  the script skips a batch number it has already stored (``{hub}:writer:<node_id>``),
  so retrying until Redis answers never appends twice.
- **Redis that lost its data** (restarted without persistence) is detected by its
  epoch, a random key set by whoever reaches an empty Redis first: readers then read
  the new streams from their start. Sequence numbers start again at 1 in a new
  epoch, so a reader must never read on from its old sequence there (it would skip
  what the new streams hold up to that number, and take what follows as the sequel):
  every read gets the epoch with the entries, in one ``MULTI``, and a reader that
  finds another epoch positions itself again. Noticing a restart by a broken
  connection is not enough: the client opens a new connection without an error when
  a pooled one was closed while idle. A Redis rolled back to an older snapshot
  (sequence below ours) is read on from its current sequence.
- **Fenced appends.** What a cluster's source publishes is appended under the lease of
  the node that runs it (:mod:`hub.cluster.leader`): its batches carry the lease's token, and
  the script appends them only while that token is the lease key's value, so a
  deposed leader that wakes up late appends nothing. The batch-number check comes
  first: a retry of a batch appended before the lease ended is still "already
  appended", not refused. Entries appended so carry the token (field ``f``), which
  says which leadership term wrote them. Admin ``publish`` batches carry no token.
  The script's answer is the only judge: no token is granted twice (:mod:`hub.cluster.lease`),
  so a refused term stays refused without this node remembering it, and nothing this
  node remembers can refuse a term Redis accepts.
- **Readers fall behind only by MAXLEN.** A gap in the sequence is entries trimmed
  before this node read them: counted as ``lost`` and logged, never invented.

:func:`merge`, :func:`resume`, :class:`Keys` and the entry codec are sans-IO;
:class:`Broker` is the trio edge over coredis (which runs on trio through anyio).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import msgspec
import trio

from hub.backoff import Backoff
from hub.config import ClusterConfig
from hub.core.stats import Report
from hub.xrpl import events

if TYPE_CHECKING:
    import coredis

log = logging.getLogger(__name__)

WRITER_TTL: Final = 86_400
"""Seconds a writer's last batch number is kept: a retry comes long before that."""

APPEND: Final = """
-- KEYS: seq, epoch, writer, leader, then one stream per event; ARGV: maxlen, batch
-- number, writer ttl, a new epoch, a fencing token ('' for none), then one payload per
-- event. Returns the last sequence number appended, 0 when this writer's batch was
-- already appended, or -1 when the token is not the lease's (the batch comes from a
-- source whose leadership has ended): then nothing is appended.
redis.call('SET', KEYS[2], ARGV[4], 'NX')
local batch = tonumber(ARGV[2])
if batch <= tonumber(redis.call('GET', KEYS[3]) or '0') then
  return 0
end
local token = ARGV[5]
if token ~= '' and redis.call('GET', KEYS[4]) ~= token then
  return -1
end
local seq = 0
for i = 6, #ARGV do
  seq = redis.call('INCR', KEYS[1])
  if token == '' then
    redis.call('XADD', KEYS[i - 1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'e', ARGV[i])
  else
    redis.call('XADD', KEYS[i - 1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'e', ARGV[i],
               'f', token)
  end
end
redis.call('SET', KEYS[3], batch, 'EX', ARGV[3])
return seq
"""

POSITION: Final = """
-- KEYS: epoch, seq; ARGV: a new epoch. Returns {epoch, seq}.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix. The ``{prefix}`` hash tag keeps every key in one
    Redis Cluster slot, which a multi-key script needs."""

    prefix: str = "hub"

    @property
    def seq(self) -> str:
        return f"{{{self.prefix}}}:seq"

    @property
    def epoch(self) -> str:
        return f"{{{self.prefix}}}:epoch"

    @property
    def leader(self) -> str:
        return f"{{{self.prefix}}}:leader"

    def writer(self, node_id: str) -> str:
        return f"{{{self.prefix}}}:writer:{node_id}"

    def stream(self, kind: str) -> str:
        return f"{{{self.prefix}}}:events:{kind}"

    def streams(self) -> list[str]:
        return [self.stream(kind) for kind in sorted(events.KINDS)]


def encode_entry(event: events.Event) -> bytes:
    """An event as stored: its body, the v2 form every node parses again."""
    return _encode(event.body)


def decode_entry(payload: bytes) -> events.Event:
    """An entry back into an event; raises :class:`~hub.xrpl.events.EventError` if it is not one."""
    try:
        body = _decode(payload)
    except msgspec.DecodeError as exc:
        raise events.EventError(f"not a stored event: {exc}") from None
    return events.parse(body)


def seq_of(entry_id: bytes | str) -> int:
    """The sequence number in a stream ID ``<seq>-0``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


@dataclass(frozen=True, slots=True)
class StreamEntry:
    seq: int
    payload: bytes


def merge(
    reply: Mapping[Any, Sequence[tuple[bytes | str, bytes]]], count: int
) -> list[StreamEntry]:
    """The entries of one multi-stream ``XREAD ... COUNT count`` safe to apply now, in order.

    A stream that returned ``count`` entries may hold more; an entry of another stream
    numbered past that stream's last one might come after entries not read yet, so it
    waits for the next read (which starts from the last entry applied).
    """
    horizon: int | None = None
    entries: list[StreamEntry] = []
    for items in reply.values():
        if not items:
            continue
        seqs = [seq_of(entry_id) for entry_id, _ in items]
        if len(items) >= count:
            horizon = seqs[-1] if horizon is None else min(horizon, seqs[-1])
        entries.extend(StreamEntry(s, payload) for s, (_, payload) in zip(seqs, items, strict=True))
    entries.sort(key=lambda entry: entry.seq)
    if horizon is not None:
        entries = [entry for entry in entries if entry.seq <= horizon]
    return entries


def resume(known_epoch: str | None, last_seq: int, epoch: str, seq: int) -> tuple[int, str]:
    """Where a (re)connected reader reads on from: (sequence, why).

    First connection: from now (a new node does not replay history). Same Redis: from
    the last sequence applied. New epoch: Redis lost its data, so from its start. A
    sequence below ours: Redis was rolled back to a snapshot, so from its sequence.
    """
    if known_epoch is None:
        return seq, "start"
    if epoch != known_epoch:
        return 0, "Redis lost its data: reading its streams from the start"
    if seq < last_seq:
        return seq, f"Redis went back from sequence {last_seq} to {seq}"
    return last_seq, "resume"


def redacted(url: str) -> str:
    """The URL without its password, for logs and ``server_info``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = parts.username or ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(slots=True)
class BrokerStatus(Report):
    """What ``server_info`` reports as ``hub.cluster.broker``."""

    url: str
    node_id: str
    connected: bool = False
    last_seq: int = 0
    reconnects: int = 0
    appended: int = 0
    applied: int = 0
    lost: int = 0
    fenced: int = 0
    epoch: str | None = None


@dataclass(slots=True)
class _Pending:
    """A batch of events waiting to be appended, with this writer's number for it and
    the fencing token it is appended under (None: unfenced)."""

    number: int
    fence: str | None
    events: list[events.Event] = field(default_factory=list)


_Queued = tuple[str | None, list[events.Event]]


def redis_client(url: str, timeout: float) -> coredis.Redis[bytes]:
    """A coredis client that never retries on its own: callers retry with backoff."""
    import coredis  # imported here: a node without a broker never loads it
    from coredis.retry import NoRetryPolicy

    return coredis.Redis.from_url(url, retry_policy=NoRetryPolicy(), connect_timeout=timeout)


class Broker:
    """This node's link to Redis: a writer task and a reader task on one coredis client.

    Resource handling: :meth:`run` owns the client and both tasks; cancel it to stop.
    Error handling: a Redis error or a command that outlives ``timeout`` marks the
    broker disconnected; each task retries with exponential backoff and carries on
    where it stopped. Connected clients keep being served meanwhile; local publishers
    wait (the publish queue fills) until their events are appended.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hub",
        maxlen: int = 100_000,
        timeout: float = 2.0,
        block: float = 1.0,
        batch: int = 500,
        count: int = 1000,
        queue: int = 1000,
        backoff: Callable[[], Backoff] = lambda: Backoff(initial=0.1, maximum=5.0),
    ) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.maxlen = maxlen
        self.timeout = timeout
        self.block = block
        self.batch = batch
        self.count = count
        self.backoff = backoff
        self.status = BrokerStatus(redacted(url), secrets.token_hex(8))
        self._send, self._receive = trio.open_memory_channel[_Queued](queue)
        self._positioned = trio.Event()
        self._moved = trio.Event()
        self._held: _Queued | None = None
        self._refused_term: str | None = None
        self._batches = 0

    async def submit(self, batch: list[events.Event], fence: str | None = None) -> None:
        """Queue events to append, back to back; waits while the writer is backed up.

        ``fence`` is the lease token of the leadership term that produced them
        (:mod:`hub.cluster.leader`); they are appended only while it holds.
        """
        if batch:
            await self._send.send((fence, batch))

    async def reached(self, epoch: str, seq: int) -> None:
        """Wait until this node has applied everything up to ``seq`` of ``epoch``."""
        while not (self.status.epoch == epoch and self.status.last_seq >= seq):
            await self._moved.wait()

    def _advanced(self) -> None:
        self._moved.set()
        self._moved = trio.Event()

    async def run(
        self,
        apply: Callable[[events.Event], None],
        remember: Callable[[events.Event], None],
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Read and apply every node's events, and append this node's, until cancelled.
        On a node's first start, ``remember`` gets what the streams hold from before it.

        Reports started at once: a node serves its clients whether Redis is up or not.
        """
        client = redis_client(self.url, self.timeout)
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(self._read, client, apply, remember)
            nursery.start_soon(self._write, client)
            task_status.started()

    def _failed(self, what: str, exc: BaseException) -> None:
        if self.status.connected:
            self.status.reconnects += 1
            log.warning("broker %s: %s failed: %s", self.status.url, what, exc or type(exc))
        self.status.connected = False

    async def _read(
        self,
        client: coredis.Redis[bytes],
        apply: Callable[[events.Event], None],
        remember: Callable[[events.Event], None],
    ) -> None:
        import coredis

        backoff = self.backoff()
        script = client.register_script(POSITION)
        while True:
            try:
                await self._position(client, script, remember)
                backoff.reset()
                await self._follow(client, apply)
            except (coredis.exceptions.RedisError, trio.TooSlowError, OSError) as exc:
                self._failed("read", exc)
                await trio.sleep(backoff.next())

    async def _position(
        self, client: coredis.Redis[bytes], script: Any, remember: Callable[[events.Event], None]
    ) -> None:
        """Where to read from in the current epoch (:func:`resume`); on the first start,
        ``remember`` what the streams hold up to there."""
        status = self.status
        with trio.fail_after(self.timeout):
            answer: Any = await script(
                keys=[self.keys.epoch, self.keys.seq], args=[secrets.token_hex(8)]
            )
        epoch, seq = _position(answer)
        start, why = resume(status.epoch, status.last_seq, epoch, seq)
        if why not in ("start", "resume"):
            log.warning("broker %s: %s", status.url, why)
        if why == "start":
            await self._backfill(client, epoch, start, remember)
        status.epoch, status.last_seq = epoch, start
        status.connected = True
        self._positioned.set()
        self._advanced()

    async def _follow(
        self, client: coredis.Redis[bytes], apply: Callable[[events.Event], None]
    ) -> None:
        """Apply what comes after the last sequence applied until the epoch changes."""
        status = self.status
        while True:
            epoch, reply = await self._snapshot(client, status.last_seq)
            if epoch != status.epoch:
                return  # another Redis (or an emptied one) under the same client
            status.connected = True
            if reply:
                self._apply(reply, apply)
                self._advanced()
                continue
            # Nothing new: wait for an append. A blocked XREAD is answered with only the
            # stream that woke it, so its reply is not a snapshot of all streams: it only
            # says when to read again.
            position = dict.fromkeys(self.keys.streams(), f"{status.last_seq}-0")
            with trio.fail_after(self.block + self.timeout):
                await client.xread(position, count=1, block=int(self.block * 1000))

    async def _snapshot(
        self, client: coredis.Redis[bytes], after: int
    ) -> tuple[str | None, dict[Any, list[tuple[bytes | str, bytes]]]]:
        """One non-blocking read of every stream after sequence ``after``, and the epoch
        it was read in: both in one ``MULTI``, so from one and the same Redis."""
        position = dict.fromkeys(self.keys.streams(), f"{after}-0")
        with trio.fail_after(self.timeout):
            async with client.pipeline(transaction=True) as pipe:
                epoch = pipe.get(self.keys.epoch)
                reply = pipe.xread(position, count=self.count)
            found, entries = await epoch, await reply
        return (None if found is None else _text(found)), _entries(entries or {})

    async def _backfill(
        self,
        client: coredis.Redis[bytes],
        epoch: str,
        upto: int,
        remember: Callable[[events.Event], None],
    ) -> None:
        """Hand ``remember`` every event the streams of ``epoch`` still hold up to
        ``upto``, in order.

        This is how a node that starts (or restarts) late can still serve resumes: the
        MAXLEN-bounded streams are the cluster's shared history.
        """
        last = 0
        while last < upto:
            found, reply = await self._snapshot(client, last)
            entries = merge(reply, self.count) if found == epoch else []
            if not entries:
                return
            for entry in entries:
                if entry.seq > upto:
                    return
                last = entry.seq
                try:
                    remember(decode_entry(entry.payload))
                except events.EventError:
                    continue

    def _apply(
        self,
        reply: Mapping[Any, Sequence[tuple[bytes | str, bytes]]],
        apply: Callable[[events.Event], None],
    ) -> None:
        status = self.status
        for entry in merge(reply, self.count):
            if entry.seq <= status.last_seq:
                continue
            if entry.seq != status.last_seq + 1:
                missing = entry.seq - status.last_seq - 1
                status.lost += missing
                log.warning(
                    "broker %s: %d events trimmed before this node read them (after %d)",
                    status.url,
                    missing,
                    status.last_seq,
                )
            status.last_seq = entry.seq
            try:
                event = decode_entry(entry.payload)
            except events.EventError as exc:
                log.warning("broker %s: entry %d is not an event: %s", status.url, entry.seq, exc)
                continue
            status.applied += 1
            apply(event)

    async def _write(self, client: coredis.Redis[bytes]) -> None:
        import coredis

        backoff = self.backoff()
        script = client.register_script(APPEND)
        await self._positioned.wait()
        while True:
            pending = await self._next_batch()
            while True:
                try:
                    with trio.fail_after(self.timeout):
                        answer: Any = await script(
                            keys=[
                                self.keys.seq,
                                self.keys.epoch,
                                self.keys.writer(self.status.node_id),
                                self.keys.leader,
                                *(self.keys.stream(event.kind) for event in pending.events),
                            ],
                            args=[
                                self.maxlen,
                                pending.number,
                                WRITER_TTL,
                                secrets.token_hex(8),
                                pending.fence or "",
                                *(encode_entry(event) for event in pending.events),
                            ],
                        )
                except (coredis.exceptions.RedisError, trio.TooSlowError, OSError) as exc:
                    self._failed("append", exc)
                    await trio.sleep(backoff.next())
                    continue
                backoff.reset()
                if answer == -1 and pending.fence is not None:
                    self._refused(pending)
                else:
                    self.status.appended += len(pending.events)
                break

    def _refused(self, pending: _Pending) -> None:
        """A fenced batch the lease no longer covers: dropped (the term is over for good,
        so every later batch of it is refused too; logged once per term)."""
        self.status.fenced += len(pending.events)
        if pending.fence == self._refused_term:
            return
        self._refused_term = pending.fence
        log.info(
            "broker %s: events of leadership term %s refused: that term has ended",
            self.status.url,
            pending.fence,
        )

    async def _next_batch(self) -> _Pending:
        """The next queued batches of one term joined, up to ``batch`` events (a batch is
        never cut)."""
        fence, first = self._held or await self._receive.receive()
        self._held = None
        self._batches += 1
        pending = _Pending(self._batches, fence, list(first))
        while len(pending.events) < self.batch:
            try:
                more = self._receive.receive_nowait()
            except trio.WouldBlock:
                break
            if more[0] != fence:
                self._held = more
                break
            pending.events.extend(more[1])
        return pending


def from_config(cluster: ClusterConfig) -> Broker | None:
    """The broker ``[cluster]`` asks for, or None for a hub on its own."""
    if cluster.broker is None:
        return None
    return Broker(
        cluster.broker,
        prefix=cluster.key_prefix,
        maxlen=cluster.stream_maxlen,
        timeout=cluster.timeout,
        block=min(1.0, cluster.timeout),
    )


def _position(answer: Any) -> tuple[str, int]:
    """The POSITION script's ``{epoch, seq}``."""
    epoch, seq = answer
    return _text(epoch), int(seq)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(reply: Mapping[Any, Iterable[Any]]) -> dict[Any, list[tuple[bytes | str, bytes]]]:
    """coredis' ``{stream: (StreamEntry, ...)}`` as ``{stream: [(id, payload), ...]}``."""
    return {
        stream: [(entry.identifier, entry.field_values.get(b"e", b"")) for entry in items]
        for stream, items in reply.items()
    }
