"""More than one process or node in one order: the Redis bus and the lease that decides
which node runs the source, and the framing of the workers' pipes. Adapters of the
node's :class:`~hub.core.ports.Bus`; they import :mod:`hub.core` and :mod:`hub.xrpl`.
"""
