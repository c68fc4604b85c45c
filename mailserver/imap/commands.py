"""One frozen dataclass per IMAP command, each with ``parse(tag, cursor)``.

Grammar references are to RFC 3501 section 9 unless stated.  ``parse`` is
called with the cursor just after the verb (at the first SP, or at the end
for verbs without arguments) and must consume the whole command.
The selected-state commands live in :mod:`.commands_selected`; the
:data:`VERBS` table here maps every verb to its class.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from .lexer import Cursor, ParseError
from .seqset import SeqSet

__all__ = [
    "Command", "Capability", "Noop", "Logout", "StartTLS", "Authenticate", "Login",
    "Select", "Qresync", "Examine", "Create", "Delete", "Rename", "Subscribe", "Unsubscribe",
    "List", "Lsub", "Status", "Append", "Namespace", "Id", "Enable", "Idle",
    "Compress",
    "STATUS_ITEMS",
]

#: RFC 3501 6.3.10 plus RFC 7162 3.1.6 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 9051 6.3.11 DELETED.
STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE",
     "DELETED"})
_MAX_ID_PAIRS = 30  # RFC 2971 3.3: at most 30 field-value pairs
_MAX_APPEND = 1000  # messages in one MULTIAPPEND (the command size is limited too)


@dataclass(frozen=True)
class Command:
    """Base of every command: the client's tag."""

    tag: str
    verb: ClassVar[str] = ""

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Command:
        """Parse the arguments of a verb without any (the default)."""
        cur.end()
        return cls(tag)


# -- any state ------------------------------------------------------------------
@dataclass(frozen=True)
class Capability(Command):
    """CAPABILITY (RFC 3501 6.1.1)."""

    verb: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True)
class Noop(Command):
    """NOOP (RFC 3501 6.1.2)."""

    verb: ClassVar[str] = "NOOP"


@dataclass(frozen=True)
class Logout(Command):
    """LOGOUT (RFC 3501 6.1.3)."""

    verb: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True)
class Id(Command):
    """ID (RFC 2971): ``params`` is None for ``ID NIL``."""

    verb: ClassVar[str] = "ID"
    params: tuple[tuple[str, str | None], ...] | None = None

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Id:
        cur.sp()
        if cur.peek_atom() == "NIL":
            cur.atom()
            cur.end()
            return cls(tag, None)
        cur.expect(b"(", "ID parameter list")
        pairs: list[tuple[str, str | None]] = []
        if not cur.try_lit(b")"):
            while True:
                key = cur.string().decode("utf-8", "replace")
                cur.sp()
                val = cur.nstring()
                pairs.append((key, None if val is None else val.decode("utf-8", "replace")))
                if len(pairs) > _MAX_ID_PAIRS:
                    raise ParseError("too many ID parameters")
                if cur.try_lit(b")"):
                    break
                cur.sp()
        cur.end()
        return cls(tag, tuple(pairs))


# -- not authenticated -----------------------------------------------------------
@dataclass(frozen=True)
class StartTLS(Command):
    """STARTTLS (RFC 3501 6.2.1)."""

    verb: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 3501 6.2.2, RFC 4959 SASL-IR).

    ``initial_response`` is the decoded octets (``b""`` for ``=``), or None
    when absent, in which case the driver sends an empty challenge.
    """

    verb: ClassVar[str] = "AUTHENTICATE"
    mechanism: str = ""
    initial_response: bytes | None = None

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Authenticate:
        cur.sp()
        mech = cur.atom("SASL mechanism").upper()
        initial = None
        if cur.try_sp():
            initial = decode_sasl(cur.token(_B64, "base64 initial response").encode())
        cur.end()
        return cls(tag, mech, initial)


@dataclass(frozen=True)
class Login(Command):
    """LOGIN userid password (RFC 3501 6.2.3)."""

    verb: ClassVar[str] = "LOGIN"
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return f"Login(tag={self.tag!r}, username={self.username!r}, password=***)"

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Login:
        cur.sp()
        user = cur.text_astring("user name")
        cur.sp()
        password = cur.text_astring("password")
        cur.end()
        return cls(tag, user, password)


# -- authenticated ------------------------------------------------------------
@dataclass(frozen=True)
class Qresync:
    """SELECT's ``QRESYNC (uidvalidity modseq [known-uids [seq-match]])`` (RFC 7162 3.2.5).

    The sequence-match data is parsed and not used: every expunge is kept with its modseq
    (:mod:`mailserver.store.vanished`), so the server never needs the client's hint."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None

    @classmethod
    def parse(cls, cur: Cursor) -> Qresync:
        cur.sp()
        cur.expect(b"(", "QRESYNC parameters")
        uidvalidity = cur.number(nonzero=True)
        cur.sp()
        modseq = cur.number(bits=63)
        known = None
        if cur.try_sp():
            if cur.peek() != b"(":
                known = cur.seqset()
            if known is None or cur.try_sp():
                cur.expect(b"(", "sequence match data")
                cur.seqset()
                cur.sp()
                cur.seqset()
                cur.expect(b")")
        cur.expect(b")")
        if known is not None and (known.saved or any(
                n is None for r in known.ranges for n in r)):
            raise ParseError("known-uids cannot hold * or $")
        return cls(uidvalidity, modseq, known)


@dataclass(frozen=True)
class Select(Command):
    """SELECT mailbox [(CONDSTORE | QRESYNC (...))] (RFC 3501 6.3.1, RFC 7162 3.1.8, 3.2.5)."""

    verb: ClassVar[str] = "SELECT"
    mailbox: str = ""
    condstore: bool = False
    qresync: Qresync | None = None

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Select:
        cur.sp()
        mailbox = cur.mailbox()
        condstore = False
        qresync = None
        if cur.try_sp():
            cur.expect(b"(", "select parameters")
            while not cur.try_lit(b")"):
                name = cur.atom("select parameter").upper()
                if name == "CONDSTORE":
                    condstore = True
                elif name == "QRESYNC" and qresync is None:
                    qresync = Qresync.parse(cur)
                else:
                    raise ParseError("unknown select parameter")
                if cur.peek() != b")":
                    cur.sp()
        cur.end()
        return cls(tag, mailbox, condstore, qresync)


@dataclass(frozen=True)
class Examine(Select):
    """EXAMINE: a read-only SELECT (RFC 3501 6.3.2)."""

    verb: ClassVar[str] = "EXAMINE"


@dataclass(frozen=True)
class Create(Command):
    """CREATE mailbox [(USE (special-use...))] (RFC 3501 6.3.3, RFC 6154 3)."""

    verb: ClassVar[str] = "CREATE"
    mailbox: str = ""
    special_use: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Create:
        cur.sp()
        mailbox = cur.mailbox()
        use: tuple[str, ...] = ()
        if cur.try_sp():
            cur.expect(b"(USE ", "USE parameter")
            use = cur.flag_list()
            cur.expect(b")")
        cur.end()
        return cls(tag, mailbox, use)


@dataclass(frozen=True)
class _MailboxCommand(Command):
    mailbox: str = ""

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> _MailboxCommand:
        cur.sp()
        mailbox = cur.mailbox()
        cur.end()
        return cls(tag, mailbox)


@dataclass(frozen=True)
class Delete(_MailboxCommand):
    """DELETE mailbox (RFC 3501 6.3.4)."""

    verb: ClassVar[str] = "DELETE"


@dataclass(frozen=True)
class Subscribe(_MailboxCommand):
    """SUBSCRIBE mailbox (RFC 3501 6.3.6)."""

    verb: ClassVar[str] = "SUBSCRIBE"


@dataclass(frozen=True)
class Unsubscribe(_MailboxCommand):
    """UNSUBSCRIBE mailbox (RFC 3501 6.3.7)."""

    verb: ClassVar[str] = "UNSUBSCRIBE"


@dataclass(frozen=True)
class Rename(Command):
    """RENAME existing new (RFC 3501 6.3.5)."""

    verb: ClassVar[str] = "RENAME"
    old: str = ""
    new: str = ""

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Rename:
        cur.sp()
        old = cur.mailbox()
        cur.sp()
        new = cur.mailbox()
        cur.end()
        return cls(tag, old, new)


@dataclass(frozen=True)
class List(Command):
    """LIST, basic (RFC 3501 6.3.8) and extended (RFC 5258, RFC 6154, RFC 5819).

    ``selection`` and ``return_opts`` hold upper-cased option names;
    ``status_items`` is set by ``RETURN (STATUS (...))``.
    """

    verb: ClassVar[str] = "LIST"
    reference: str = ""
    patterns: tuple[str, ...] = ()
    selection: frozenset[str] = frozenset()
    return_opts: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> List:
        cur.sp()
        selection: set[str] = set()
        if cur.try_lit(b"("):
            while not cur.try_lit(b")"):
                selection.add(cur.atom("selection option").upper())
                if cur.peek() != b")":
                    cur.sp()
            cur.sp()
        reference = cur.list_mailbox()
        cur.sp()
        if cur.try_lit(b"("):
            patterns = [cur.list_mailbox()]
            while not cur.try_lit(b")"):
                cur.sp()
                patterns.append(cur.list_mailbox())
        else:
            patterns = [cur.list_mailbox()]
        ret: set[str] = set()
        status: tuple[str, ...] = ()
        if cur.try_sp():
            cur.expect(b"RETURN (", "RETURN options")
            while not cur.try_lit(b")"):
                opt = cur.atom("return option").upper()
                ret.add(opt)
                if opt == "STATUS":
                    cur.sp()
                    status = _status_items(cur)
                if cur.peek() != b")":
                    cur.sp()
        cur.end()
        return cls(tag, reference, tuple(patterns), frozenset(selection), frozenset(ret), status)


@dataclass(frozen=True)
class Lsub(Command):
    """LSUB reference pattern (RFC 3501 6.3.9)."""

    verb: ClassVar[str] = "LSUB"
    reference: str = ""
    pattern: str = ""

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Lsub:
        cur.sp()
        ref = cur.list_mailbox()
        cur.sp()
        pattern = cur.list_mailbox()
        cur.end()
        return cls(tag, ref, pattern)


def _status_items(cur: Cursor) -> tuple[str, ...]:
    cur.expect(b"(", "status items")
    items = [cur.atom("status item").upper()]
    while not cur.try_lit(b")"):
        cur.sp()
        items.append(cur.atom("status item").upper())
    bad = [i for i in items if i not in STATUS_ITEMS]
    if bad:
        raise ParseError(f"unknown status item {bad[0][:20]}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Status(Command):
    """STATUS mailbox (items) (RFC 3501 6.3.10)."""

    verb: ClassVar[str] = "STATUS"
    mailbox: str = ""
    items: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Status:
        cur.sp()
        mailbox = cur.mailbox()
        cur.sp()
        items = _status_items(cur)
        cur.end()
        return cls(tag, mailbox, items)


CatParts = tuple[tuple[str, bytes], ...]
"""RFC 4469 cat-parts: ``("TEXT", octets)`` or ``("URL", url)``."""
AppendMessage = tuple[tuple[str, ...], datetime | None, bytes | CatParts]


def _append_message(cur: Cursor) -> AppendMessage:
    """[SP flag-list] [SP date-time] SP literal (the leading SP already read)."""
    flags: tuple[str, ...] = ()
    date = None
    if cur.peek() == b"(":
        flags = cur.flag_list()
        cur.sp()
    if cur.peek() == b'"':
        date = cur.date_time()
        cur.sp()
    if cur.peek_atom() == "UTF8":  # RFC 6855 4: UTF8 (literal8)
        cur.atom()
        cur.sp()
        cur.expect(b"(", "UTF8 (literal8)")
        message = cur.literal()
        cur.expect(b")", "UTF8 (literal8)")
        return flags, date, message
    if cur.peek_atom() == "CATENATE":  # RFC 4469 5
        cur.atom()
        cur.sp()
        return flags, date, _cat_parts(cur)
    return flags, date, cur.literal()


def _cat_parts(cur: Cursor) -> CatParts:
    """``"(" cat-part *(SP cat-part) ")"``: ``TEXT literal`` or ``URL astring``."""
    cur.expect(b"(", "CATENATE parts")
    parts: list[tuple[str, bytes]] = []
    while True:
        kind = cur.atom("cat-part").upper()
        cur.sp()
        if kind == "TEXT":
            parts.append((kind, cur.literal()))
        elif kind == "URL":
            parts.append((kind, cur.astring("url")))
        else:
            raise ParseError("expected TEXT or URL")
        if len(parts) > _MAX_APPEND:
            raise ParseError("too many CATENATE parts")
        if cur.try_lit(b")"):
            return tuple(parts)
        cur.sp()


@dataclass(frozen=True)
class Append(Command):
    """APPEND mailbox [flags] [date-time] literal (RFC 3501 6.3.11), more messages after it
    for MULTIAPPEND (RFC 3502) in ``more``; a literal may be a ``literal8`` (RFC 3516).

    ``message`` holds the literal's octets as sent.
    """

    verb: ClassVar[str] = "APPEND"
    mailbox: str = ""
    flags: tuple[str, ...] = ()
    date: datetime | None = None
    message: bytes | CatParts = b""
    more: tuple[AppendMessage, ...] = ()

    def __repr__(self) -> str:  # never dump message content into logs
        return (f"Append(tag={self.tag!r}, mailbox={self.mailbox!r}, flags={self.flags!r}, "
                f"date={self.date!r}, message=<{len(self.message)} octets>, "
                f"more=<{len(self.more)} messages>)")

    @property
    def messages(self) -> tuple[AppendMessage, ...]:
        """Every message of the command, in order."""
        return ((self.flags, self.date, self.message), *self.more)

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Append:
        cur.sp()
        mailbox = cur.mailbox()
        cur.sp()
        flags, date, message = _append_message(cur)
        more: list[AppendMessage] = []
        while cur.try_sp():
            more.append(_append_message(cur))
            if len(more) >= _MAX_APPEND:
                raise ParseError("too many messages in one APPEND")
        cur.end()
        return cls(tag, mailbox, flags, date, message, tuple(more))


@dataclass(frozen=True)
class Namespace(Command):
    """NAMESPACE (RFC 2342)."""

    verb: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True)
class Enable(Command):
    """ENABLE capability... (RFC 5161); names are upper-cased."""

    verb: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...] = ()

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Enable:
        caps = []
        while cur.try_sp():
            caps.append(cur.atom("capability").upper())
        if not caps:
            raise ParseError("ENABLE needs at least one capability")
        cur.end()
        return cls(tag, tuple(caps))


@dataclass(frozen=True)
class Compress(Command):
    """COMPRESS mechanism (RFC 4978 3); the mechanism is upper-cased."""

    verb: ClassVar[str] = "COMPRESS"
    mechanism: str = ""

    @classmethod
    def parse(cls, tag: str, cur: Cursor) -> Compress:
        cur.sp()
        mechanism = cur.atom("compression mechanism").upper()
        cur.end()
        return cls(tag, mechanism)


@dataclass(frozen=True)
class Idle(Command):
    """IDLE (RFC 2177); the driver then calls ``Receiver.start_idle``."""

    verb: ClassVar[str] = "IDLE"


_B64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}|=")


def decode_sasl(token: bytes) -> bytes:
    """Decode a SASL base64 token; ``=`` means an empty response (RFC 4959 3).

    Raises:
        ParseError: on invalid base64.
    """
    if token == b"=":
        return b""
    try:
        return base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("invalid base64") from None
