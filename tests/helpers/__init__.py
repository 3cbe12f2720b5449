"""What the tests share (their fixtures are in ``tests/conftest.py``).

- Hubs and their clients: :mod:`.hubs` (a hub on port 0, WebSocket clients),
  :mod:`.wsraw` and :mod:`.httpraw` (clients that do only what they are told),
  :mod:`.frames` (client frames by hand), :mod:`.sockets` (small send buffers, a
  subscriber that never reads), :mod:`.remotes` (clients as a proxied hub sees them),
  :mod:`.handover` (a rolling restart on one port), :mod:`.workers` (``--workers 2``).
- Data: :mod:`.samples` (stream messages), :mod:`.fuzz` (requests to every method),
  :mod:`.history` and :mod:`.outboxes` (the node's state filled by hand),
  :mod:`.metrics` (Prometheus text read back), :mod:`.clocks` (a clock the test sets),
  :mod:`.books` (book sides as issues and as specs),
  :mod:`.paths` and :mod:`.snippets` (the checkout and its documentation's code).
- Real programs on free ports: :mod:`.programs` (found, or skipped and under CI failed),
  :mod:`.processes` (``python -m hub``), :mod:`.redis_server`, :mod:`.proxies` (nginx,
  haproxy), :mod:`.testca` (openssl), :mod:`.peers` (xrpl.js under Node, xrpl-py),
  :mod:`.fake_rippled`.
- :mod:`.isolation`: the guard that keeps socket, name lookup and process out of
  ``tests/unit``.
"""
