"""The node: a hub's state and policy, knowing no socket and no Redis.

Sessions, dispatch and the methods, subscriptions, fan-out, shared feeds and each
client's outbox, the history and lookups from it, resumes, load balances, health,
counters and metrics. It is handed its adapters through the ports of :mod:`.ports`
(the bus, the forwarder, the source, book snapshots) by the composition root
(:mod:`hub.app.compose`). It imports :mod:`hub.wire`, :mod:`hub.xrpl`, trio and
prometheus-client, never :mod:`hub.edge`, :mod:`hub.links`, :mod:`hub.sources`,
:mod:`hub.cluster`, :mod:`hub.app`, a socket or Redis.
"""
