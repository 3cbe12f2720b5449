"""Who runs a cluster's source: the lease, decided without I/O and without a clock of its own.

Redis holds the lease (:mod:`hub.cluster.leader`): a key whose value is the leader's *token*,
set only if absent, expiring ``lease`` seconds after it was last set or renewed. This
module turns Redis' answers and the times the caller passes in (its monotonic clock)
into what this node is and when it must act next.

The token is ``<node id>:<term id>``, the term id 64 random bits the caller draws for
each acquisition. Fencing compares tokens for equality only (an append is taken while
its token *is* the lease's value), so a token must never be granted twice; it need
not grow. A counter kept in Redis would not do: it restarts at 1 when Redis comes back
empty (or goes back to a snapshot, or fails over to a replica that lagged) and grants
a node a token it already held, and saw refused, in an earlier term. A random term id
owes nothing to what Redis kept. So a token refused once is refused for good: that
term is over, and the broker can go by Redis' answer alone.

The rules:

- A follower asks for the lease every ``renew_every`` (``lease / 3``) seconds, with a
  new term id *t* each time; Redis answers "yours, as ``<node id>:<t>``" or names
  the holder.
- A leader renews every ``renew_every``. A renewal *sent* at *t* and accepted means the
  key lives until at least *t* + ``lease`` by Redis' clock (Redis starts the expiry
  when it runs the command, after *t*), so no other node can be named before then.
- ``stop_by`` is the send time of the last accepted acquisition or renewal, plus
  ``lease``, minus ``margin`` (``lease / 4``): the leader must have stopped appending
  by then whatever becomes of later renewals (no answer, a process paused, a clock
  that jumped). The caller runs its source in a cancel scope with this deadline. The
  margin covers the time between deciding to append and Redis running the append;
  what slips through anyway is refused by the token.
- A renewal that Redis refuses (another holder, or no key: it expired) ends the term
  at once; one without an answer changes nothing until ``stop_by``.

Every transition, as (role, event) -> (role, next attempt), and the change it reports:
*routine* (a term that began, was given back, or news of the leader) or *ended* (a
term that ended without being given back, which an operator should look into: this
node or its Redis stalled, or Redis lost the lease):

================  =====================  ========  ==========================  =======
role              event                  new role  next attempt at              change
================  =====================  ========  ==========================  =======
follower          ``acquired(t, sent)``  leader    sent + renew_every          routine
follower          ``held_by(h, now)``    follower  now + renew_every           routine
follower          ``failed(now)``        follower  now + renew_every           none
leader            ``renewed(sent)``      leader    sent + renew_every          none
leader            ``held_by(h, now)``    follower  now + renew_every           ended
leader            ``failed(now)``        leader    now + renew_every / 2       none
leader            ``expire(now)``        follower  now (when now >= stop_by)   ended
leader            ``stopped(now)``       follower  now                         ended
leader            ``resign(now)``        follower  now + renew_every           routine
================  =====================  ========  ==========================  =======

A follower's ``held_by`` reports a change only when it names another holder than
before; the events not listed for a role change nothing.

``acquired`` to a leader, ``renewed`` to a follower and a term id that makes no token
(empty, or with a colon) are errors (:class:`LeaseError`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


class LeaseError(RuntimeError):
    """An answer that cannot happen in the current role (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """What a transition changed: this node's role, or (``news``) only the leader it
    knows of. ``ended``: this node's term ended without being given back."""

    role: Role
    leader: str | None
    why: str
    ended: bool = False
    news: bool = False


@dataclass(slots=True)
class Lease:
    """This node's view of the lease. ``leader`` is the holder's node id as last seen."""

    node_id: str
    lease: float = 3.0
    role: Role = Role.FOLLOWER
    term: str = ""
    leader: str | None = None
    stop_by: float = -math.inf
    next_at: float = 0.0
    changes: int = 0

    @property
    def renew_every(self) -> float:
        return self.lease / 3

    @property
    def margin(self) -> float:
        return self.lease / 4

    @property
    def token(self) -> str:
        """The lease key's value while this node leads: its node id and term id."""
        return token(self.node_id, self.term)

    def acquired(self, term: str, sent_at: float) -> Transition:
        """Redis set the lease to this node's token for ``term`` (asked at ``sent_at``)."""
        self._expect(Role.FOLLOWER, "acquired")
        token(self.node_id, term)  # a term id that makes a token, or LeaseError
        self.role, self.term, self.leader = Role.LEADER, term, self.node_id
        self.stop_by = sent_at + self.lease - self.margin
        self.next_at = sent_at + self.renew_every
        self.changes += 1
        return Transition(Role.LEADER, self.node_id, f"acquired the lease (term {term})")

    def renewed(self, sent_at: float) -> None:
        self._expect(Role.LEADER, "renewed")
        self.stop_by = max(self.stop_by, sent_at + self.lease - self.margin)
        self.next_at = sent_at + self.renew_every

    def held_by(self, holder: str | None, now: float) -> Transition | None:
        """Redis names another holder (or none): a lost term, or news of the leader."""
        self.next_at = now + self.renew_every
        if self.role is Role.LEADER:
            self.role, self.leader, self.stop_by = Role.FOLLOWER, holder, -math.inf
            self.changes += 1
            return Transition(Role.FOLLOWER, holder, "the lease was lost", ended=True)
        if holder == self.leader:
            return None
        self.leader = holder
        return Transition(Role.FOLLOWER, holder, "another node leads", news=True)

    def failed(self, now: float) -> None:
        """No answer from Redis: ask again soon; a leader stays one until ``stop_by``."""
        wait = self.renew_every / 2 if self.role is Role.LEADER else self.renew_every
        self.next_at = now + wait

    def expire(self, now: float) -> Transition | None:
        """End the term once ``stop_by`` has passed by this node's clock."""
        if self.role is not Role.LEADER or now < self.stop_by:
            return None
        self.role, self.leader, self.stop_by = Role.FOLLOWER, None, -math.inf
        self.next_at = now
        self.changes += 1
        return Transition(Role.FOLLOWER, None, "the lease ran out by this node's clock", ended=True)

    def stopped(self, now: float) -> Transition | None:
        """The source's scope ended while leading (its deadline passed, perhaps as a
        renewal was being answered): the term is over either way."""
        if self.role is not Role.LEADER:
            return None
        self.stop_by = min(self.stop_by, now)
        return self.expire(now)

    def resign(self, now: float) -> Transition | None:
        """This node gave the lease back (it is shutting down)."""
        if self.role is not Role.LEADER:
            return None
        self.role, self.leader, self.stop_by = Role.FOLLOWER, None, -math.inf
        self.next_at = now + self.renew_every
        self.changes += 1
        return Transition(Role.FOLLOWER, None, "gave the lease back")

    def _expect(self, role: Role, event: str) -> None:
        if self.role is not role:
            raise LeaseError(f"{event!r} while {self.role.value}")


def token(node_id: str, term: str) -> str:
    """A lease value: ``<node id>:<term id>``. Neither part may hold a colon, so
    :func:`holder` finds the node again."""
    if ":" in node_id or ":" in term or not node_id or not term:
        raise LeaseError(f"not a node id and term id: {node_id!r}, {term!r}")
    return f"{node_id}:{term}"


def holder(value: str) -> str | None:
    """The node id in a lease value (None for no value, or one not made by :func:`token`)."""
    node, colon, term = value.partition(":")
    return node if colon and node and term and ":" not in term else None
