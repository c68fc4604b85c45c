"""Logging set-up: logger names, a connection-id context variable, and redaction helpers.

Protocol traces go to DEBUG; message data and AUTH payloads are redacted unless tracing is
explicitly raised. Nothing at INFO or above names a patient, an attachment or a body.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Any

__all__ = ["conn_id", "new_conn_id", "ConnIdFilter", "setup", "set_format", "redact_address",
           "quiet_protocol_libraries", "escape_controls", "JsonFormatter", "FORMATS"]

conn_id: contextvars.ContextVar[str] = contextvars.ContextVar("conn_id", default="-")


def new_conn_id() -> str:
    """Return a fresh short connection id and bind it to the current context."""
    value = secrets.token_hex(4)
    conn_id.set(value)
    return value


class ConnIdFilter(logging.Filter):
    """Adds ``record.conn_id`` from the context variable."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conn_id = conn_id.get()
        return True


def redact_address(address: str) -> str:
    """Hide the local part of an address (a patient's local part is their INS)."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


_CONTROLS = re.compile(r"[\x00-\x1f\x7f\\]")


def escape_controls(text: str) -> str:
    """Client bytes made safe for a log line: control characters (NUL, CR, LF...) and the
    backslash become ``\\xNN`` / ``\\\\``, so a client cannot forge or split log lines."""
    return _CONTROLS.sub(
        lambda m: "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()):02x}", text)


class _ControlsEscaped(logging.Filter):
    """Escapes the string arguments of a record (aiosmtpd logs an unrecognised command verb
    as the client sent it, with ``%s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(escape_controls(a) if isinstance(a, str) else a
                                for a in record.args)
        return True


class _BelowWarningDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_protocol_libraries() -> None:
    """aiosmtpd logs every command line (addresses with patients' INS, AUTH data) at
    INFO/DEBUG on ``mail.log``: drop those records at the logger itself, whatever the root
    configuration (an embedding application, pytest's caplog...)."""
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _BelowWarningDropped) for f in logger.filters):
        logger.addFilter(_BelowWarningDropped())
    if not any(isinstance(f, _ControlsEscaped) for f in logger.filters):
        logger.addFilter(_ControlsEscaped())


_TEXT = "%(asctime)s %(levelname)s %(name)s [%(conn_id)s] %(message)s"
_FIELD = re.compile(r"(?<!\S)([a-z_][a-z0-9_]*)=(\S+)")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "conn_id", "message", "asctime", "taskName"}
_RESERVED = frozenset({"time", "level", "logger", "conn_id", "event", "message", "exception"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``conn_id`` (when there is a connection), ``event`` (the message before its
    ``key=value`` fields), ``message``, then the fields: the message's ``key=value`` pairs and
    what the caller passed as ``extra``. JSON string escaping keeps client bytes (control
    characters, quotes) inside their string: a client cannot split or forge a line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        found = _FIELD.search(message)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
        }
        cid = getattr(record, "conn_id", "-")
        if cid and cid != "-":
            out["conn_id"] = cid
        out["event"] = message[:found.start()].rstrip() if found else message
        out["message"] = message
        for key, value in _FIELD.findall(message):
            if key not in _RESERVED:
                out.setdefault(key, value)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _RESERVED:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=True)


FORMATS = ("text", "json")


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(_TEXT)
    raise ValueError(f"unknown log format {fmt!r}")


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler installed by :func:`setup` (``set_format`` changes only it)."""


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for the command line (``fmt``: "text" or "json")."""
    handler = _OurHandler()
    handler.addFilter(ConnIdFilter())
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs whole SMTP lines (including AUTH and DATA) at DEBUG/INFO: keep it quiet.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    quiet_protocol_libraries()


def set_format(fmt: str) -> None:
    """Switch the handler installed by :func:`setup` to ``fmt`` (``[logging] format``, known
    once the configuration is read); other handlers (an embedding application's) are left."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _OurHandler):
            handler.setFormatter(_formatter(fmt))
