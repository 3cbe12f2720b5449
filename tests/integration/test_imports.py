"""``import hub`` is lazy, seen from a fresh interpreter: importing a parser loads neither
the server, nor Redis's client, nor Prometheus."""

from __future__ import annotations

import subprocess
import sys


def test_importing_a_parser_loads_neither_the_server_nor_redis_nor_prometheus() -> None:
    """``import hub`` is lazy: the public names load their modules on first use."""
    probe = (
        "import sys, hub.wire.envelope, hub.xrpl.events\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in"
        " ('trio', 'coredis', 'prometheus_client') or m.startswith('hub.edge')]\n"
        "print(','.join(sorted(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
