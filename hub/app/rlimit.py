"""The process's open-file limit: a server holding many sockets wants the hard limit.

The soft ``RLIMIT_NOFILE`` is often 1024 while the hard one is far higher; every
connection is a file, so the hub raises the soft limit to the hard one at start (as
Go's runtime does) and says what it got.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)


def raise_open_files() -> int:
    """Raise the soft limit to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    log.debug("open-file limit: %d", soft)
    return soft
