"""A throwaway certificate authority and a server certificate for 127.0.0.1/localhost.

Made with the ``openssl`` command (skipped locally when it is missing, failing under
CI), so TLS tests run against a certificate chain built the way an operator builds
one, and clients verify it against the CA file as they would with ``--cafile``.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub import Config
from tests.helpers.hubs import make_config
from tests.helpers.programs import need_program


@dataclass(frozen=True)
class Certificates:
    """The files of one test CA: its certificate, and the server's key and chain."""

    ca_cert: Path
    cert: Path
    """The server certificate followed by the CA's: a chain, as ``tls_cert`` allows."""
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def make_ca(directory: Path) -> Certificates:
    """A new CA and a server certificate for ``127.0.0.1``, ``::1`` and ``localhost``."""
    openssl = need_program("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, check=False)
        if done.returncode:
            raise RuntimeError(f"openssl {args[0]} failed:\n{done.stderr.decode()}")

    run(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", "/CN=hub test CA", "-keyout", "ca.key", "-out", "ca.pem"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    run(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"),
        *("-keyout", "server.key", "-out", "server.csr"),
    )
    (directory / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost\n"
        "basicConstraints = CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
    )
    run(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem"),
    )
    chain = directory / "chain.pem"
    chain.write_bytes((directory / "server.pem").read_bytes() + (directory / "ca.pem").read_bytes())
    return Certificates(ca_cert=directory / "ca.pem", cert=chain, key=directory / "server.key")


def tls_config(certs: Certificates, **sections: dict[str, Any]) -> Config:
    """Test settings (:func:`make_config`) serving TLS with ``certs``'s chain."""
    server = {"tls_cert": str(certs.cert), "tls_key": str(certs.key), **sections.pop("server", {})}
    return make_config(server=server, **sections)
