"""Mail to patients' personal addresses (one-time codes, password reset, new-message notices).

These messages leave the health-mail space: they never carry health content, only a code or
a link. With ``config.webmail.relay`` (``host:port``) they are handed to that relay over SMTP
(aiosmtplib, STARTTLS when the relay offers it); without a relay (the demo) each message is
written as an ``.eml`` file into ``config.webmail.outbox_dir`` (what ``mssante demo`` prints).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib

from mailserver.config import Config, parse_hostport

__all__ = ["Mailer", "PersonalMail"]

log = logging.getLogger(__name__)


class PersonalMail:
    """A message to a personal address: plain text, French."""

    def __init__(self, to: str, subject: str, text: str) -> None:
        self.to = to
        self.subject = subject
        self.text = text


class Mailer:
    """Sends :class:`PersonalMail` through the relay, or into the outbox folder."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sender = f"ne-pas-repondre@{config.domain}"
        self.relay = config.webmail.relay
        self.outbox = config.path(config.webmail.outbox_dir)

    def build(self, mail: PersonalMail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"Messagerie santé <{self.sender}>"
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=self.config.domain)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        msg.set_content(mail.text)
        return msg

    async def send(self, mail: PersonalMail) -> None:
        """Send now; raises on failure (callers retry, e.g. the job queue)."""
        msg = self.build(mail)
        if self.relay:
            host, port = parse_hostport(self.relay)
            await aiosmtplib.send(msg, hostname=host, port=port, start_tls=None, timeout=30)
            log.info("mailer: sent to relay")
            return
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        os.replace(tmp, self.outbox / name)
        log.info("mailer: written to outbox")

    def outbox_files(self) -> list[Path]:
        """The outbox's messages, oldest first (demo and tests)."""
        if not self.outbox.exists():
            return []
        return sorted(self.outbox.glob("*.eml"))
