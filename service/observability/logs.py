"""Structured logs: one JSON object per line, carrying the request id that caused the work.

The API sets the id per request (`X-Request-ID`, honoured or generated); a stylize job carries
it to its worker in the task's kwargs, so `grep <id>` finds a job's whole story across hosts.

    configure_logging("json", "INFO")
    with request_id_context("3f2a..."):
        logger.info("job %s started", job_id)   # {"request_id": "3f2a...", ...}
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# What a client may send as its own id: short, and harmless in a log line or a header.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def current_request_id() -> str | None:
    return _current_request_id.get()


def accept_request_id(value: str | None) -> str:
    """The client's id when it is a sane one, else a new one."""
    return value if value and _VALID_ID.match(value) else uuid.uuid4().hex


@contextmanager
def request_id_context(request_id: str | None) -> Iterator[None]:
    token = _current_request_id.set(request_id)
    try:
        yield
    finally:
        _current_request_id.reset(token)


def set_request_id(request_id: str | None) -> None:
    """For code without a `with` block around the work (Celery's task signals)."""
    _current_request_id.set(request_id)


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "request_id"?, extras..., "exception"?}"""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = current_request_id()
        return f"{line} [request_id={request_id}]" if request_id else line


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(log_format: str, level: str) -> None:
    """One handler on the root logger, in `log_format`; uvicorn's loggers go through it too."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_actionstyle", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._actionstyle = True  # type: ignore[attr-defined]  # ours: replace, never stack
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own text handlers; its access log is replaced by ours (see middleware).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def reformat_handlers(logger: logging.Logger, log_format: str) -> None:
    """Give handlers someone else set up (Celery's) our format."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(log_format))
