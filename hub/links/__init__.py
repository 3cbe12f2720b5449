"""Connections to an upstream rippled, Clio or hub: the WebSocket client, the relay that
follows an upstream's streams, and the pool that forwards the methods the hub does not
answer itself. Adapters the composition root hands to the node; they import
:mod:`hub.core` (its ports), :mod:`hub.wire` and :mod:`hub.xrpl`.
"""
