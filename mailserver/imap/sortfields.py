"""The SORT/THREAD keys of one message (RFC 5256 2, RFC 5957), read from its header block.

Pure (header bytes in, :class:`SortFields` out).  They are computed when the message's sealed
IMAP summary is made and stored inside it (:mod:`.meta`), so SORT and THREAD read the summary
and never decrypt a body; summaries written before the keys existed get them from their
cached header block.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from datetime import UTC
from email.message import Message
from email.utils import parsedate_to_datetime

from .envelope import parse_addresses, unfold
from .rawheaders import header_text

__all__ = ["SortFields", "sort_fields", "base_subject"]


@dataclass(frozen=True, slots=True)
class SortFields:
    """``date`` is the sent date in UTC seconds (None if unreadable); addresses are the first
    address's ``addr-mailbox`` (RFC 5256 2.2: the local part), displays the decoded display
    name or else ``mailbox@host`` (RFC 5957 2); ``subject`` is the base subject and ``reply``
    whether the subject carried a reply/forward marker (RFC 5256 2.1); ``references`` are the
    parents' Message-IDs, oldest first (References, else In-Reply-To)."""

    date: float | None
    from_addr: str
    from_display: str
    to_addr: str
    to_display: str
    cc_addr: str
    subject: str
    reply: bool
    message_id: str
    references: tuple[str, ...]

    def to_list(self) -> list[object]:
        """Compact JSON form."""
        return [*astuple(self)[:-1], list(self.references)]

    @classmethod
    def from_list(cls, data: list[object]) -> SortFields:
        """Inverse of :meth:`to_list`."""
        d, fa, fd, ta, td, ca, subj, reply, mid, refs = data
        assert isinstance(refs, list)
        return cls(d if isinstance(d, int | float) else None, str(fa), str(fd), str(ta),
                   str(td), str(ca), str(subj), bool(reply), str(mid),
                   tuple(str(r) for r in refs))


_WS = re.compile(r"\s+")
_TRAILER = re.compile(r"(?:\s|\(fwd\))+\Z", re.I)
_BLOB = r"\[[^\[\]]*\]\s*"
_BLOB_RE = re.compile(_BLOB)
_LEADER = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s+", re.I)
_MSGID = re.compile(r"<[^<>\s]+>")


def base_subject(text: str) -> tuple[str, bool]:
    """RFC 5256 2.1 base subject of a decoded subject, and whether it was a reply/forward."""
    s = _WS.sub(" ", text)
    reply = False
    while True:
        m = _TRAILER.search(s)  # step 2
        if m is not None:
            reply = reply or "(" in m.group()
            s = s[:m.start()]
        while True:  # steps 3 and 4, until nothing changes
            m = _LEADER.match(s)
            if m is not None:
                reply = reply or not m.group().isspace()
                s = s[m.end():]
                continue
            m = _BLOB_RE.match(s)
            if m is not None and s[m.end():].strip():
                s = s[m.end():]
                continue
            break
        if s[:5].lower() == "[fwd:" and s.endswith("]"):  # step 5
            s, reply = s[5:-1], True
            continue
        return s, reply


def _first(msg: Message, field: str) -> tuple[str, str]:
    """(addr-mailbox, display) of the first address of a field; empty strings if none."""
    value = msg.get(field)
    if value is None:
        return "", ""
    for phrase, _, mailbox, host in parse_addresses(str(value)):
        if mailbox is None or host is None:
            continue  # group markers
        display = header_text(phrase).strip() if phrase else ""
        return mailbox, display or (f"{mailbox}@{host}" if host else mailbox)
    return "", ""


def _date(msg: Message) -> float | None:
    value = msg.get("Date")
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(unfold(str(value)))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 5322 -0000: "no information": taken as UTC
        return when.replace(tzinfo=UTC).timestamp()
    return when.timestamp()


def _references(msg: Message) -> tuple[str, ...]:
    refs = _MSGID.findall(unfold(str(msg.get("References", ""))))
    if not refs:
        refs = _MSGID.findall(unfold(str(msg.get("In-Reply-To", ""))))[:1]
    return tuple(refs)


def sort_fields(msg: Message) -> SortFields:
    """The keys of a header block parsed with the raw (compat32) policy."""
    from_addr, from_display = _first(msg, "From")
    to_addr, to_display = _first(msg, "To")
    cc_addr, _ = _first(msg, "Cc")
    subject, reply = base_subject(header_text(unfold(str(msg.get("Subject", "")))))
    ids = _MSGID.findall(unfold(str(msg.get("Message-ID", ""))))
    return SortFields(_date(msg), from_addr, from_display, to_addr, to_display, cc_addr,
                      subject, reply, ids[0] if ids else "", _references(msg))
