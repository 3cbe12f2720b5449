"""What the tests share: hubs and clients (:mod:`.hubs`), raw WebSocket and HTTP clients
(:mod:`.wsraw`, :mod:`.httpraw`), sample stream messages (:mod:`.samples`), real
programs started on free ports (:mod:`.programs`, :mod:`.redis_server`, :mod:`.proxies`,
:mod:`.testca`, :mod:`.processes`), socket-level helpers (:mod:`.sockets`), a fake
rippled (:mod:`.fake_rippled`), the documentation's code blocks (:mod:`.snippets`) and
the rule that unit tests do no I/O (:mod:`.isolation`). Fixtures are in
``tests/conftest.py``.
"""
