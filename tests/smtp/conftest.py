from __future__ import annotations

import smtplib
import ssl

from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, PASSWORD


def submission(runtime: Runtime, tls: ssl.SSLContext, user: str | None = None,
               password: str = PASSWORD) -> smtplib.SMTP:
    """A logged-in smtplib client on the submission port (blocking: call in a thread)."""
    host, port = runtime.ports["submission"]
    client = smtplib.SMTP(host, port, local_hostname="client.test", timeout=30)
    client.starttls(context=tls)
    if user is not None:
        client.login(user, password)
    return client


def message(sender: str, to: str, subject: str = "Consultation", body: str = "Bonjour",
            extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((sender, to, subject, body)))}@{DOMAIN}>\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            ).encode()


