"""Source leadership on Redis: every node may be given the source; one runs it at a time.

The decisions are :class:`hub.cluster.lease.Lease`'s; this module is the Redis and trio side.

- **The lease** is the key ``{hub}:leader``, set only when absent (``SET NX PX``)
  with an expiry of ``[cluster] lease_seconds``. Its value is the holder's *token*:
  its node id and a term id the node draws at random for each acquisition
  (:mod:`hub.cluster.lease` says why not a counter in Redis: one that restarts with an empty
  Redis grants a token twice). The leader renews it every third of the lease;
  followers ask for it as often.
- **Fencing.** The source's events are appended with the token
  (:meth:`hub.cluster.broker.Broker.submit`); the append script compares it with the key and
  appends nothing when they differ. A leader that wakes up late (paused, partitioned,
  a lease that expired while it waited, a Redis that restarted empty) therefore cannot
  append anything once its term is over: its token has been replaced, or has gone
  with the key, and no later term has it again.
- **Admin** ``publish`` **is not fenced.** It is not part of the source's sequence:
  any node may take it, at any time, and it is appended once (by batch number)
  whenever its node reaches Redis, even after a pause. Fencing it would lose a
  publish a client was told succeeded for no gain in order. (Do not publish
  ``ledgerClosed`` by hand into a cluster that relays an upstream: a new leader
  resumes after the last ledger in the stream, whatever wrote it.)
- **Structure.** :meth:`Leadership.run` owns everything. While this node leads, the
  source, the task feeding its events to the broker, and the renewals run in one
  cancel scope whose deadline is the lease's ``stop_by`` on this node's clock, pushed
  on by each renewal. So the source stops before the lease can expire at Redis, even
  when renewals are stuck or the process was stopped; a refused renewal cancels the
  scope at once.
- **Taking over.** A new leader first waits until its own node has applied
  everything in the stream up to its acquisition (the script returns the stream's
  epoch and sequence), so its history ends where the stream does even if Redis
  restarted empty meanwhile, then starts the source from the history's
  :class:`~hub.core.history.Tail`: the upstream relay publishes nothing up to that ledger,
  finishes it if it was cut short, and mends the gap up to the upstream's ledger.
- **Shutting down** gives the lease back, so another node takes over without waiting
  for it to expire.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio

from hub.cluster.broker import Broker, redis_client
from hub.cluster.lease import Lease, Role, Transition, holder, token
from hub.core.history import Tail
from hub.core.ports import Lead
from hub.xrpl import events

if TYPE_CHECKING:
    import coredis

log = logging.getLogger(__name__)

ACQUIRE: Final = """
-- KEYS: leader, epoch, seq; ARGV: node id, token, lease ms, a new epoch.
-- Returns {1, epoch, seq} when the lease is now this token (a new term, also when this
-- node's previous term still held it), else {0, holder}.
redis.call('SET', KEYS[2], ARGV[4], 'NX')
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then
  return {0, held}
end
redis.call('SET', KEYS[1], ARGV[2], held and 'XX' or 'NX', 'PX', ARGV[3])
return {1, redis.call('GET', KEYS[2]), tonumber(redis.call('GET', KEYS[3]) or '0')}
"""

RENEW: Final = """
-- KEYS: leader; ARGV: token, lease ms. Returns {1, token} if renewed, else {0, holder}.
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, held}
end
return {0, held or ''}
"""

RELEASE: Final = """
-- KEYS: leader; ARGV: token. Deletes the lease if it is still this token's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Term:
    """One leadership term: its id, its lease token, and the stream position at
    acquisition."""

    term: str
    token: str
    epoch: str
    seq: int


class Leadership:
    """This node's candidacy for the cluster's source.

    Resource handling: :meth:`run` owns a coredis client and, while leading, the
    source's tasks; cancel it to stop (the lease is given back).
    Error handling: Redis errors and timeouts are retried every renewal period; a
    leader that cannot renew stops its source at ``stop_by`` and is a follower again.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        lease: float,
        tail: Callable[[], Tail | None],
        parse: Callable[[Any], list[events.Event]],
        batch: int = 500,
    ) -> None:
        self.broker = broker
        self.lease = Lease(broker.status.node_id, lease)
        self.timeout = min(broker.timeout, self.lease.renew_every)
        self._tail = tail
        self._parse = parse
        self._batch = batch
        self._reachable = True

    @property
    def leading(self) -> bool:
        return self.lease.role is Role.LEADER

    @property
    def changes(self) -> int:
        """Times this node became or stopped being the leader."""
        return self.lease.changes

    def as_json(self) -> dict[str, Any]:
        """What ``server_info`` reports as ``hub.cluster``."""
        lease = self.lease
        return {
            "role": lease.role.value,
            "leader": lease.leader,
            "node_id": lease.node_id,
            "token": lease.token if self.leading else None,
            "lease_seconds": lease.lease,
            "changes": lease.changes,
        }

    async def run(self, start_source: Lead, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Ask for the lease; run the source while holding it; forever."""
        try:
            async with redis_client(self.broker.url, self.timeout) as client:
                task_status.started()
                while True:
                    term = await self._campaign(client)
                    await self._lead(client, term, start_source)
        finally:
            await self._release()

    async def _campaign(self, client: coredis.Redis[bytes]) -> Term:
        """Ask for the lease until this node holds it."""
        keys, lease = self.broker.keys, self.lease
        script = client.register_script(ACQUIRE)
        while True:
            await trio.sleep_until(lease.next_at)
            term_id = secrets.token_hex(8)
            asked = token(lease.node_id, term_id)
            sent = trio.current_time()
            answer = await self._call(
                script,
                [keys.leader, keys.epoch, keys.seq],
                [lease.node_id, asked, int(lease.lease * 1000), secrets.token_hex(8)],
            )
            if answer is None:
                continue
            if int(answer[0]) == 1:
                term = Term(term_id, asked, _text(answer[1]), int(answer[2]))
                self._changed(lease.acquired(term.term, sent))
                return term
            self._changed(lease.held_by(holder(_text(answer[1])), trio.current_time()))

    async def _lead(self, client: coredis.Redis[bytes], term: Term, start_source: Lead) -> None:
        """One term: the source runs in a scope that ends no later than ``stop_by``."""
        with trio.CancelScope(deadline=self.lease.stop_by) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._renew, client, term, scope)
                await self.broker.reached(term.epoch, term.seq)
                send, receive = trio.open_memory_channel[Any](self._batch)
                nursery.start_soon(self._pump, receive, term.token)
                tail = self._tail()
                where = "the start" if tail is None else f"after ledger {tail.ledger_index}"
                log.info("leadership: starting the source from %s", where)
                await start_source(nursery, send, tail)
        self._changed(self.lease.stopped(trio.current_time()))

    async def _renew(
        self, client: coredis.Redis[bytes], term: Term, scope: trio.CancelScope
    ) -> None:
        lease = self.lease
        script = client.register_script(RENEW)
        while True:
            await trio.sleep_until(lease.next_at)
            sent = trio.current_time()
            answer = await self._call(
                script, [self.broker.keys.leader], [term.token, int(lease.lease * 1000)]
            )
            if answer is None:
                continue
            if int(answer[0]) == 1:
                lease.renewed(sent)
                scope.deadline = lease.stop_by
                continue
            self._changed(lease.held_by(holder(_text(answer[1])), trio.current_time()))
            scope.cancel()
            return

    async def _pump(self, receive: trio.MemoryReceiveChannel[Any], token: str) -> None:
        """The source's events to the broker, appended under this term's token."""
        async for item in receive:
            batch = self._parse(item)
            while len(batch) < self._batch:
                try:
                    batch.extend(self._parse(receive.receive_nowait()))
                except trio.WouldBlock:
                    break
            await self.broker.submit(batch, fence=token)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """One script call; None (and the lease told) when Redis did not answer."""
        import coredis

        try:
            with trio.fail_after(self.timeout):
                answer = await script(keys=keys, args=args)
        except (coredis.exceptions.RedisError, trio.TooSlowError, OSError) as exc:
            if self._reachable:
                log.warning("leadership: Redis did not answer: %s", exc or type(exc).__name__)
            self._reachable = False
            self.lease.failed(trio.current_time())
            return None
        if not self._reachable:
            log.info("leadership: Redis answers again")
        self._reachable = True
        return answer

    async def _release(self) -> None:
        """Give the lease back (shutting down): another node need not wait it out.

        On a client of its own, in a shielded scope: the running client's connections
        are being cancelled with everything else.
        """
        if not self.leading:
            return
        token = self.lease.token
        self._changed(self.lease.resign(trio.current_time()))
        with trio.CancelScope(shield=True), trio.move_on_after(self.timeout):
            async with redis_client(self.broker.url, self.timeout) as client:
                script = client.register_script(RELEASE)
                await self._call(script, [self.broker.keys.leader], [token])

    def _changed(self, change: Transition | None) -> None:
        """Log a change: at INFO when routine, at WARNING when a term ended without being
        given back (this node or Redis stalled, or Redis lost the lease)."""
        if change is None:
            return
        node = self.lease.node_id
        level = logging.WARNING if change.ended else logging.INFO
        if change.role is Role.LEADER:
            log.log(level, "leadership: node %s leads now: %s", node, change.why)
        elif change.news:
            leader = change.leader or "(unknown)"
            log.log(level, "leadership: node %s leads; node %s follows", leader, node)
        else:
            log.log(level, "leadership: node %s stopped leading: %s", node, change.why)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")
