"""ENVELOPE construction (RFC 3501 7.4.2) from raw header values.

RFC 2047 encoded words are left as sent: the client decodes them.  Address
lists follow RFC 5322 3.4, groups are written per RFC 3501 7.4.2: a start
marker ``(NIL NIL "name" NIL)`` and an end marker ``(NIL NIL NIL NIL)``.
"""

from __future__ import annotations

import re
from email.message import Message

from .encoder import Adjacent, Value

__all__ = ["envelope", "parse_addresses", "unfold"]

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[<>,:;@]|[^\s<>,:;@"()]+|\s+|\(', re.S)


def unfold(value: str) -> str:
    """Remove folding whitespace line breaks (RFC 5322 2.2.3)."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _tokens(text: str) -> list[str]:
    """Tokens of an address list; a comment is one token starting with ``(``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "(":  # a (possibly nested) comment
            depth = 0
            start = i
            while i < len(text):
                if text[i] == "\\":
                    i += 2
                    continue
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            out.append(text[start:i])
            continue
        if text[i] == ")":
            i += 1
            continue
        m = _TOKEN.match(text, i)
        assert m is not None  # the pattern accepts any character
        if not m.group(0).isspace():
            out.append(m.group(0))
        i = m.end()
    return out


def _is_comment(tok: str) -> bool:
    return tok.startswith("(")


def _comment_text(tok: str) -> str | None:
    inner = tok[1:-1] if tok.endswith(")") else tok[1:]
    return re.sub(r"\\(.)", r"\1", inner).strip() or None


def _unquote(tok: str) -> str:
    if tok.startswith('"'):
        return re.sub(r"\\(.)", r"\1", tok[1:-1] if tok.endswith('"') and len(tok) > 1 else tok[1:])
    return tok


Address = tuple[str | None, str | None, str | None, str | None]


def parse_addresses(value: str) -> list[Address]:
    """Parse an address list into ``(name, adl, mailbox, host)`` tuples, with group markers.

    A bare ``user@domain (Real Name)`` takes its personal name from the comment, as Dovecot
    does; other comments are ignored.
    """
    toks = _tokens(unfold(value))
    out: list[Address] = []
    i = 0
    in_group = False
    while i < len(toks):
        phrase: list[str] = []
        comment: str | None = None
        while i < len(toks) and toks[i] not in ("<", ",", ":", ";", "@"):
            if _is_comment(toks[i]):
                comment = _comment_text(toks[i])
            else:
                phrase.append(toks[i])
            i += 1
        tok = toks[i] if i < len(toks) else ""
        if tok == ":" and not in_group:
            out.append((None, None, " ".join(_unquote(p) for p in phrase) or "", None))
            in_group = True
            i += 1
            continue
        if tok == "<":
            i += 1
            inner: list[str] = []
            while i < len(toks) and toks[i] != ">":
                if not _is_comment(toks[i]):
                    inner.append(toks[i])
                i += 1
            i += 1
            adl = None
            if ":" in inner:  # obsolete source route @a,@b:user@host
                k = inner.index(":")
                adl = "".join(inner[:k]) or None
                inner = inner[k + 1:]
            name = " ".join(_unquote(p) for p in phrase) or None
            out.append(_mailbox(name, adl, inner))
        elif tok == "@" or (phrase and tok in ("", ",", ";")):
            spec = phrase
            if tok == "@":
                spec = phrase + ["@"]
                i += 1
                while i < len(toks) and toks[i] not in (",", ";", "<"):
                    if _is_comment(toks[i]):
                        comment = _comment_text(toks[i])
                    else:
                        spec.append(toks[i])
                    i += 1
            out.append(_mailbox(comment, None, spec))
        while i < len(toks) and toks[i] not in (",", ";"):
            i += 1  # junk after an address
        if i < len(toks) and toks[i] == ";" and in_group:
            out.append((None, None, None, None))
            in_group = False
        i += 1
    if in_group:
        out.append((None, None, None, None))
    return out


def _mailbox(name: str | None, adl: str | None, spec: list[str]) -> Address:
    if "@" in spec:
        k = len(spec) - 1 - spec[::-1].index("@")
        local, host = "".join(_unquote(t) for t in spec[:k]), "".join(spec[k + 1:])
    else:
        local, host = "".join(_unquote(t) for t in spec), ""
    # RFC 3501 7.4.2 uses NIL host only for group markers; keep "" for a missing domain.
    return (name, adl, local, host)


def _addr_list(msg: Message, name: str) -> Value:
    values = msg.get_all(name)
    if not values:
        return None
    addrs = [a for v in values for a in parse_addresses(str(v))]
    # RFC 3501 9: env-from = "(" 1*address ")": the addresses follow each other without SP.
    return [Adjacent(tuple(list(a) for a in addrs))] if addrs else None


def envelope(msg: Message) -> list[Value]:
    """Return the ENVELOPE structure for a header block.

    Args:
        msg: the headers, parsed with the ``compat32`` policy so values stay raw.
    """
    def field(name: str) -> str | None:
        v = msg.get(name)
        return None if v is None else unfold(str(v))

    from_ = _addr_list(msg, "From")
    sender = _addr_list(msg, "Sender") or from_  # RFC 3501 7.4.2 defaults
    reply_to = _addr_list(msg, "Reply-To") or from_
    return [field("Date"), field("Subject"), from_, sender, reply_to, _addr_list(msg, "To"),
            _addr_list(msg, "Cc"), _addr_list(msg, "Bcc"), field("In-Reply-To"),
            field("Message-ID")]
