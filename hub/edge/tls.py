"""TLS for the hub's port: one server context from PEM files, reloadable.

The same port then serves ``wss://`` and ``https://``. A context is built whole before
it replaces the old one, so a bad file on reload leaves the running one in place; a
connection keeps the context it was accepted with.
"""

from __future__ import annotations

import ssl

from hub.config import ConfigError, ServerConfig


def server_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    """The context ``[server] tls_cert``/``tls_key`` ask for, or None without TLS."""
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(
            f"[server] tls_cert/tls_key: cannot load {cfg.tls_cert!r} and {cfg.tls_key!r} "
            f"({why}); give a PEM certificate (chain) and its private key"
        ) from None
    return context


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A client context that trusts the system's CAs, or only ``cafile`` when given."""
    return ssl.create_default_context(cafile=cafile)
