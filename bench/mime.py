"""Realistic benchmark messages: text part + base64 attachment, CRLF, dot-stuffed once."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.policy import SMTP

__all__ = ["SIZES", "build_message", "stuff", "parse_size"]

SIZES = {"10k": 10 * 1024, "1m": 1024 * 1024}


def parse_size(text: str) -> int:
    """``10k``, ``1m``, ``2048`` → bytes."""
    text = text.strip().lower()
    if text in SIZES:
        return SIZES[text]
    mult = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("km")) * mult


def build_message(size: int, sender: str = "bench@example.org", rcpt: str = "rcpt@example.org",
                  seed: bytes | None = None) -> bytes:
    """A MIME message of about *size* bytes (CRLF line ends), without Message-ID.

    The attachment is random bytes (incompressible, like a scanned PDF) sized so that the whole
    message is close to *size* once base64-encoded.
    """
    text = ("Bonjour,\n\nVeuillez trouver ci-joint le compte rendu.\n\nCordialement,\n"
            "Dr Test\n" * 3)
    overhead = 1200 + len(text)
    raw_len = max(0, (size - overhead) * 57 // 78)
    if seed is None:
        rnd = os.urandom(raw_len)
    else:
        rnd = (seed * (raw_len // max(len(seed), 1) + 1))[:raw_len]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = "Compte rendu de consultation"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0100"
    msg.set_content(text)
    msg.add_attachment(rnd, maintype="application", subtype="pdf", filename="compte-rendu.pdf")
    return msg.as_bytes(policy=SMTP)


def stuff(content: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency plus the end marker (content must end with CRLF)."""
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return (b"\r\n" + content).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"
