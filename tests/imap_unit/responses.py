"""A strict checker of every server response line against RFC 3501 / RFC 9051 section 9.

Written for the tests from the ABNF, sharing no code with the server's encoder; the FETCH
``msg-att`` part is :mod:`tests.imap_unit.grammar`.  It covers the responses this server
writes: ``continue-req``, tagged and untagged status responses with their ``resp-text-code``
(RFC 3501, 4315 UIDPLUS, 5530, 7162, 3516), CAPABILITY, ENABLED, ID, NAMESPACE, FLAGS,
LIST/LSUB (with RFC 5258 extended items), STATUS (RFC 7162 HIGHESTMODSEQ), SEARCH, ESEARCH
(RFC 4731, with RFC 5267 PARTIAL, ADDTO and REMOVEFROM),
SORT and THREAD (RFC 5256), EXISTS/RECENT/EXPUNGE, VANISHED (RFC 7162) and FETCH.

:class:`ResponseStream` cuts a server's output into responses (a line and the literals it
announces) and checks each; the IMAP test fixtures feed it everything the server sends.
"""

from __future__ import annotations

import re

from tests.imap_unit.grammar import _P, GrammarError, _msg_att

__all__ = ["GrammarError", "check_response", "ResponseStream"]

_TAG = re.compile(rb"[^(){ %*\"\\+\x00-\x1f\x7f-\xff]+")
_ATOM = re.compile(rb"[^(){ %*\"\\\]\x00-\x1f\x7f-\xff]+")
_ASTRING = re.compile(rb"[^(){ %*\"\\\x00-\x1f\x7f-\xff]+")
_TEXT = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]+")
_CODE_TEXT = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x5c\x5e-\x7f]+")  # TEXT-CHAR except "]"
_SEQSET = re.compile(rb"(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?"
                     rb"(?:,(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?)*")
_UIDSET = re.compile(rb"[1-9][0-9]*(?::[1-9][0-9]*)?(?:,[1-9][0-9]*(?::[1-9][0-9]*)?)*")
_STATUS_ATTS = {b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"SIZE",
                b"DELETED", b"HIGHESTMODSEQ"}
_BARE_CODES = {b"ALERT", b"PARSE", b"HASCHILDREN", b"READ-ONLY", b"READ-WRITE", b"TRYCREATE",
               b"NOMODSEQ", b"CLOSED", b"UNKNOWN-CTE", b"UIDNOTSTICKY", b"COMPRESSIONACTIVE"}


def _re(p: _P, rx: re.Pattern[bytes], what: str) -> bytes:
    m = rx.match(p.data, p.pos)
    if m is None:
        raise p.fail(what)
    p.pos = m.end()
    return m.group()


def _nz(p: _P) -> int:
    n = p.number()
    if n == 0 or n > 0xFFFFFFFF:
        raise p.fail("nz-number (1..4294967295)")
    return n


def _astring(p: _P) -> bytes:
    if p.peek() in (b'"', b"{"):
        return p.string()
    return _re(p, _ASTRING, "astring")


def _text(p: _P) -> None:
    """text = 1*TEXT-CHAR (RFC 3501; 7-bit, no CR/LF)."""
    _re(p, _TEXT, "text (1*TEXT-CHAR)")


def _capabilities(p: _P, *, in_code: bool) -> list[bytes]:
    """capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)"""
    caps = []
    while p.peek() == b" " and not (in_code and p.peek(2) == b" ]"):
        p.sp()
        caps.append(_re(p, _ATOM, "capability atom"))
    if b"IMAP4REV1" not in (c.upper() for c in caps):
        raise p.fail("IMAP4rev1 among the capabilities")
    return caps


def _flags(p: _P, *, perm: bool = False) -> list[bytes]:
    """flag-list = "(" [flag *(SP flag)] ")"; flag = "\\" atom / atom (keyword); flag-perm
    adds "\\*" (PERMANENTFLAGS)."""
    p.lit(b"(")
    out: list[bytes] = []
    while not p.try_lit(b")"):
        if out:
            p.sp()
        if perm and p.try_lit(b"\\*"):
            out.append(b"\\*")
            continue
        slash = p.try_lit(b"\\")
        out.append((b"\\" if slash else b"") + _re(p, _ATOM, "flag"))
    return out


def _resp_text_code(p: _P) -> None:
    name = _re(p, _ATOM, "resp-text-code").upper()
    if name in _BARE_CODES:
        return
    if name == b"CAPABILITY":
        _capabilities(p, in_code=True)
    elif name in (b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"):
        p.sp()
        _nz(p)
    elif name == b"HIGHESTMODSEQ":  # mod-sequence-value: positive (RFC 7162 7)
        p.sp()
        if p.number() == 0:
            raise p.fail("mod-sequence-value (not 0)")
    elif name == b"PERMANENTFLAGS":
        p.sp()
        _flags(p, perm=True)
    elif name == b"BADCHARSET":
        if p.try_lit(b" ("):
            _astring(p)
            while p.try_lit(b" "):
                _astring(p)
            p.lit(b")")
    elif name == b"APPENDUID":
        p.sp()
        _nz(p)
        p.sp()
        _re(p, _UIDSET, "append-uid")
    elif name == b"COPYUID":
        p.sp()
        _nz(p)
        for _ in range(2):
            p.sp()
            _re(p, _UIDSET, "uid-set")
    elif name == b"MODIFIED":
        p.sp()
        _re(p, _SEQSET, "sequence-set")
    elif name == b"NOUPDATE":  # RFC 5267 5: "NOUPDATE" SP quoted
        p.sp()
        p.quoted()
    elif p.try_lit(b" "):  # atom [SP 1*<any TEXT-CHAR except "]">]
        _re(p, _CODE_TEXT, "resp-text-code argument")


def _resp_text(p: _P) -> None:
    """resp-text = ["[" resp-text-code "]" SP] text"""
    if p.try_lit(b"["):
        _resp_text_code(p)
        p.lit(b"]")
        if p.peek(2) == b"\r\n":  # RFC 9051 makes text optional after a code
            return
        p.sp()
    _text(p)


def _mailbox_list(p: _P) -> None:
    """"(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
    [SP mbox-list-extended] (RFC 5258)"""
    flags = _flags(p)
    if any(not f.startswith(b"\\") for f in flags):
        raise p.fail("mbx-list-flag (\\atom)")
    p.sp()
    if not p.nil():
        if len(p.quoted()) != 1:
            raise p.fail("one QUOTED-CHAR delimiter")
    p.sp()
    _astring(p)
    if p.try_lit(b" ("):
        first = True
        while not p.try_lit(b")"):
            if not first:
                p.sp()
            first = False
            name = _astring(p).upper()
            p.sp()
            if name == b"CHILDINFO":
                p.lit(b"(")
                p.string()
                while p.try_lit(b" "):
                    p.string()
                p.lit(b")")
            elif name == b"OLDNAME":
                p.lit(b"(")
                _astring(p)
                p.lit(b")")
            else:
                raise p.fail("known mbox-list-extended item")


def _status(p: _P) -> None:
    """"STATUS" SP mailbox SP "(" [status-att-list] ")" """
    _astring(p)
    p.lit(b" (")
    first = True
    while not p.try_lit(b")"):
        if not first:
            p.sp()
        first = False
        name = _re(p, _ATOM, "status-att").upper()
        if name not in _STATUS_ATTS:
            raise p.fail("status-att")
        p.sp()
        p.number()


def _modseq_tail(p: _P) -> None:
    """[SP "(" "MODSEQ" SP mod-sequence-value ")"] (RFC 7162 search-sort-mod-seq)"""
    if p.try_lit(b" (MODSEQ "):
        if p.number() == 0:
            raise p.fail("mod-sequence-value")
        p.lit(b")")


def _numbers(p: _P) -> None:
    while p.peek(2) not in (b"\r\n", b" ("):
        p.sp()
        _nz(p)
    _modseq_tail(p)


_PARTIAL_RANGE = re.compile(rb"(?:[1-9][0-9]*:[1-9][0-9]*|-[1-9][0-9]*:-[1-9][0-9]*)")


def _context_pairs(p: _P) -> None:
    """"(" context-position SP sequence-set *(SP context-position SP sequence-set) ")"
    (RFC 5267 5)"""
    p.lit(b"(")
    while True:
        p.number()
        p.sp()
        _re(p, _UIDSET, "sequence-set")
        if p.try_lit(b")"):
            return
        p.sp()


def _esearch(p: _P) -> None:
    """"ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data) (RFC 4731, RFC 5267
    5: ADDTO and REMOVEFROM may repeat, RFC 9394 3.1: negative PARTIAL ranges)"""
    if p.try_lit(b" (TAG "):
        p.string()
        p.lit(b")")
    if p.data[p.pos:p.pos + 4].upper() == b" UID" and p.data[p.pos + 4:p.pos + 5] in (
            b" ", b"\r"):
        p.pos += 4
    seen: set[bytes] = set()
    while p.try_lit(b" "):
        name = _re(p, _ATOM, "search-return-data").upper()
        if name in seen and name not in (b"ADDTO", b"REMOVEFROM"):
            raise p.fail("each search-return-data once")
        seen.add(name)
        p.sp()
        if name in (b"MIN", b"MAX"):
            _nz(p)
        elif name == b"ALL":
            _re(p, _UIDSET, "sequence-set")
        elif name == b"COUNT":
            p.number()
        elif name == b"MODSEQ":
            if p.number() == 0:
                raise p.fail("mod-sequence-value (not 0)")
        elif name == b"PARTIAL":  # "(" partial-range SP partial-results ")"
            p.lit(b"(")
            _re(p, _PARTIAL_RANGE, "partial-range")
            p.sp()
            if not p.nil():
                _re(p, _UIDSET, "sequence-set")
            p.lit(b")")
        elif name in (b"ADDTO", b"REMOVEFROM"):
            _context_pairs(p)
        else:
            raise p.fail("MIN, MAX, ALL, COUNT, MODSEQ, PARTIAL, ADDTO or REMOVEFROM")


def _thread_list(p: _P) -> None:
    """thread-list = "(" (thread-members / thread-nested) ")" """
    p.lit(b"(")
    if p.peek() == b"(":
        _thread_nested(p)
    else:
        _nz(p)
        while p.try_lit(b" "):
            if p.peek() == b"(":
                _thread_nested(p)
                break
            _nz(p)
    p.lit(b")")


def _thread_nested(p: _P) -> None:
    """thread-nested = 2*thread-list"""
    _thread_list(p)
    if p.peek() != b"(":
        raise p.fail("thread-nested: at least two thread-lists")
    while p.peek() == b"(":
        _thread_list(p)


def _namespace(p: _P) -> None:
    if p.nil():
        return
    p.lit(b"(")
    while p.try_lit(b"("):
        p.string()
        p.sp()
        if not p.nil():
            p.quoted()
        p.lit(b")")
    p.lit(b")")


def _id(p: _P) -> None:
    if p.nil():
        return
    p.lit(b"(")
    p.string()
    p.sp()
    p.nstring()
    while p.try_lit(b" "):
        p.string()
        p.sp()
        p.nstring()
    p.lit(b")")


def _fetch(p: _P) -> None:
    p.lit(b"(")
    names: set[bytes] = set()
    while True:
        name, _ = _msg_att(p)
        if name in names:
            raise p.fail(f"{name!r} once per FETCH response")
        names.add(name)
        if p.try_lit(b")"):
            return
        p.sp()


def _numbered(p: _P) -> None:
    """nz-number SP ("EXPUNGE" / "FETCH" SP msg-att) / number SP ("EXISTS" / "RECENT")"""
    n = p.number()
    p.sp()
    word = _re(p, _ATOM, "EXISTS, RECENT, EXPUNGE or FETCH").upper()
    if word in (b"EXPUNGE", b"FETCH") and n == 0:
        raise p.fail("nz-number")
    if word == b"FETCH":
        p.sp()
        _fetch(p)
    elif word not in (b"EXISTS", b"RECENT", b"EXPUNGE"):
        raise p.fail("EXISTS, RECENT, EXPUNGE or FETCH")


def _untagged(p: _P) -> None:
    if p.peek().isdigit():
        _numbered(p)
        return
    word = _re(p, _ATOM, "response keyword").upper()
    if word in (b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE"):
        p.sp()
        _resp_text(p)
    elif word == b"CAPABILITY":
        _capabilities(p, in_code=False)
    elif word == b"ENABLED":
        while p.try_lit(b" "):
            _re(p, _ATOM, "capability")
    elif word == b"FLAGS":
        p.sp()
        _flags(p)
    elif word in (b"LIST", b"LSUB"):
        p.sp()
        _mailbox_list(p)
    elif word == b"STATUS":
        p.sp()
        _status(p)
    elif word in (b"SEARCH", b"SORT"):
        _numbers(p)
    elif word == b"ESEARCH":
        _esearch(p)
    elif word == b"THREAD":
        if p.try_lit(b" "):
            _thread_list(p)
            while p.peek() == b"(":
                _thread_list(p)
    elif word == b"VANISHED":
        p.try_lit(b" (EARLIER)")
        p.sp()
        _re(p, _UIDSET, "known-uids")
    elif word == b"ID":
        p.sp()
        _id(p)
    elif word == b"NAMESPACE":
        for _ in range(3):
            p.sp()
            _namespace(p)
    else:
        raise p.fail(f"a known untagged response, not {word!r}")


def check_response(data: bytes) -> None:
    """Check one complete response (its line, literals included, and the final CRLF).

    Raises:
        GrammarError: at the first deviation from the formal syntax.
    """
    p = _P(data)
    if p.try_lit(b"+"):
        if p.peek(2) != b"\r\n":  # continue-req = "+" SP (resp-text / base64) CRLF
            p.sp()
            if p.peek(2) != b"\r\n":
                _resp_text(p)
    elif p.try_lit(b"* "):
        _untagged(p)
    else:
        _re(p, _TAG, "tag")
        p.sp()
        word = _re(p, _ATOM, "OK, NO or BAD").upper()
        if word not in (b"OK", b"NO", b"BAD"):
            raise p.fail("OK, NO or BAD")
        p.sp()
        _resp_text(p)
    p.lit(b"\r\n")
    if p.pos != len(data):
        raise p.fail("end of response")


_LITERAL_END = re.compile(rb"~?\{([0-9]+)\}\r\n\Z")


class ResponseStream:
    """Collects a connection's output, cuts it into responses and checks each.

    ``errors`` holds a message per malformed response; ``responses`` every checked response.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.errors: list[str] = []
        self.responses: list[bytes] = []

    def feed(self, data: bytes) -> None:
        """Add output; every response completed by it is checked."""
        self.buf += data
        while (end := self._complete()) is not None:
            resp = bytes(self.buf[:end])
            del self.buf[:end]
            self.responses.append(resp)
            try:
                check_response(resp)
            except GrammarError as exc:
                self.errors.append(f"{exc} in {resp[:300]!r}")

    def _complete(self) -> int | None:
        pos = 0
        while True:
            nl = self.buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            line_end = nl + 2
            m = _LITERAL_END.search(bytes(self.buf[max(pos, line_end - 40):line_end]))
            if m is None:
                return line_end
            pos = line_end + int(m.group(1))
            if pos > len(self.buf):
                return None
