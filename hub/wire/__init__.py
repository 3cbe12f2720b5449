"""The WebSocket and HTTP side of the protocol, without any I/O: bytes and Structs in,
bytes and Structs out.

Frames in (:mod:`.inbound`) and out (:mod:`.frames`), the opening handshake, permessage-
deflate, PROXY headers, the client's address behind trusted proxies, who is admin,
bounded JSON decoding, the request and reply envelopes of rippled's API (WebSocket and
JSON-RPC), the one table of errors, API versions and the close codes. Nothing here knows
a socket, a clock or a node: it imports only the standard library, msgspec, h11's and
wsproto's parsers, and :mod:`hub.config` for the types of its settings.
"""
