"""Logging set-up: logger names, a connection-id context variable, and redaction helpers.

Protocol traces go to DEBUG; message data and AUTH payloads are redacted unless tracing is
explicitly raised. Nothing at INFO or above names a patient, an attachment or a body.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets

__all__ = ["conn_id", "new_conn_id", "ConnIdFilter", "setup", "redact_address",
           "quiet_protocol_libraries", "escape_controls"]

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


def setup(level: str = "INFO") -> None:
    """Configure the root logger once for the command line."""
    handler = logging.StreamHandler()
    handler.addFilter(ConnIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(conn_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs whole SMTP lines (including AUTH and DATA) at DEBUG/INFO: keep it quiet.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    quiet_protocol_libraries()
