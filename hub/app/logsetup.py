"""The process's log handler: one line per record on stderr, as text or as JSON.

``text`` is for a terminal or the journal; ``json`` writes one object per line (``time``,
``level``, ``logger``, ``message``, and ``exc_info`` as a string when there is one; a
worker adds ``worker``) so that a log shipper needs no pattern to parse it.

Libraries log for their own developers: coredis logs every retry at INFO (its first
call of each Lua script is one, ``No matching script``), which tells an operator
nothing. Their loggers are held to WARNING unless the level is ``debug``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

LIBRARIES: Final = ("coredis", "trio-websocket")
"""Third-party loggers held to WARNING unless the hub logs at ``debug``."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; ``extra`` fields go into each one."""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.extra = dict(extra or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.extra,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(
    level: str,
    fmt: str = "text",
    *,
    worker: int | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send every record at ``level`` or above to ``stream`` (stderr) in ``fmt``
    (``text`` or ``json``), replacing whatever handler the root logger had."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter({} if worker is None else {"worker": worker}))
    else:
        where = "" if worker is None else f"worker {worker} "
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {where}%(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.DEBUG if level.lower() == "debug" else logging.WARNING
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
