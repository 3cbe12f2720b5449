"""trio and sockets: the listeners, each connection's task tree, HTTP on the same port,
TLS, the one write path to a client's socket, and graceful shutdown.

The edge moves bytes between sockets and the node (:mod:`hub.core`); it parses and
renders with :mod:`hub.wire`. It may import :mod:`hub.core`, :mod:`hub.wire` and
:mod:`hub.xrpl`; nothing below it imports it.
"""
