"""CATENATE (RFC 4469): an APPENDed message made of literal text and parts of stored messages.

``APPEND mailbox [flags] [date] CATENATE (TEXT literal URL "/INBOX;UIDVALIDITY=7/;UID=20/;
SECTION=1.MIME" ...)``: each URL names a message, or a section of one, of the same account
(RFC 5092 syntax; ``imap://user@host`` prefixes accepted and ignored, since no other account can
be read: there is no URLAUTH).  :func:`parse_url` is pure; :func:`assemble` resolves the URLs
through a reader the session gives it.  A URL that names nothing answers ``NO [BADURL url]``
(RFC 4469 6), a result over the APPEND limit ``NO [TOOBIG]``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from .fetchspec import Section
from .message import fetch_section, parse_structure

__all__ = ["ImapUrl", "BadUrl", "TooBig", "parse_url", "assemble"]

_URL = re.compile(r"(?:imap://[^/]*)?/(?P<mailbox>[^;/]+)(?:;UIDVALIDITY=(?P<validity>[1-9]\d*))?"
                  r"/;UID=(?P<uid>[1-9]\d*)(?:/;SECTION=(?P<section>[0-9A-Za-z.]+))?",
                  re.IGNORECASE)
_SPECIFIERS = {"HEADER", "TEXT", "MIME"}


class BadUrl(Exception):
    """A CATENATE URL that is invalid or names nothing (RFC 4469 6: ``[BADURL url]``)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class TooBig(Exception):
    """The assembled message is over the limit (RFC 4469 6: ``[TOOBIG]``)."""


@dataclass(frozen=True)
class ImapUrl:
    """A message or section named by an IMAP URL (RFC 5092)."""

    mailbox: str
    uidvalidity: int | None
    uid: int
    section: Section


def parse_url(url: str) -> ImapUrl:
    """The parts of ``url``; raises :class:`BadUrl` if it is not a message URL."""
    m = _URL.fullmatch(url)
    if m is None:
        raise BadUrl(url)
    section = Section()
    if m["section"]:
        bits = m["section"].split(".")
        nums = [int(b) for b in bits if b.isdigit()]
        rest = [b.upper() for b in bits[len(nums):]]
        if any(not b.isdigit() for b in bits[:len(nums)]) or len(rest) > 1 or (
                rest and rest[0] not in _SPECIFIERS) or 0 in nums:
            raise BadUrl(url)
        section = Section(tuple(nums), rest[0] if rest else None)
    validity = int(m["validity"]) if m["validity"] else None
    return ImapUrl(unquote(m["mailbox"]), validity, int(m["uid"]), section)


#: Reads the raw octets of (mailbox, uidvalidity or None, uid); None if there is no such message.
Reader = Callable[[str, int | None, int], Awaitable[bytes | None]]


async def assemble(parts: Sequence[tuple[str, bytes]], read: Reader, limit: int) -> bytes:
    """The message made of ``parts`` (``("TEXT", octets)`` or ``("URL", url)``)."""
    out: list[bytes] = []
    size = 0
    for kind, data in parts:
        if kind == "URL":
            url = data.decode("utf-8", "replace")
            ref = parse_url(url)
            raw = await read(ref.mailbox, ref.uidvalidity, ref.uid)
            piece = (None if raw is None
                     else fetch_section(raw, parse_structure(raw)[0], ref.section))
            if piece is None:
                raise BadUrl(url)
            data = piece
        size += len(data)
        if size > limit:
            raise TooBig
        out.append(data)
    return b"".join(out)
