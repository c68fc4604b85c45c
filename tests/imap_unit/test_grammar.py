"""BODY, BODYSTRUCTURE and ENVELOPE against the formal syntax of RFC 3501 section 9.

Every value is parsed by the strict checker of :mod:`tests.imap_unit.grammar`, which is written
from the ABNF and shares no code with the encoder.  Generated MIME trees also check that the
structure read back matches the tree that was written, and that each part's section number
(RFC 3501 6.4.5) gives its body.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.imap import encoder as enc
from mailserver.imap.fetchspec import Section
from mailserver.imap.message import MessageSummary, fetch_section
from tests.imap_unit.grammar import Body, GrammarError, parse_body, parse_envelope, parse_fetch
from tests.imap_unit.test_message import NESTED

RFC3501_EXAMPLE = (
    b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
    b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
    b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")'
)


def test_checker_accepts_the_rfc_example_and_rejects_spaced_lists() -> None:
    assert len(parse_body(RFC3501_EXAMPLE).parts) == 2
    with pytest.raises(GrammarError):
        parse_body(RFC3501_EXAMPLE.replace(b"23)(", b"23) ("))
    env = (b'(NIL NIL ((NIL NIL "a" "x")(NIL NIL "b" "x")) NIL NIL NIL NIL NIL NIL NIL)')
    assert parse_envelope(env)[2] == [(None, None, b"a", b"x"), (None, None, b"b", b"x")]
    with pytest.raises(GrammarError):
        parse_envelope(env.replace(b"x\")(", b"x\") ("))
    with pytest.raises(GrammarError):
        parse_body(b'("text" "plain" ("" "") NIL NIL "7BIT" 1 1 NIL)'.replace(b'1 1 NIL', b"1"))


def _summary(raw: bytes) -> tuple[MessageSummary, Body, Body, list[object]]:
    s = MessageSummary.from_bytes(raw)
    return s, parse_body(s.bodystructure), parse_body(s.body), parse_envelope(s.envelope)


CORPUS = [
    ("nested", NESTED),
    ("single-text", b"From: a@x.example\r\nTo: b@y.example, c@y.example\r\n\r\nhello\r\n"),
    ("no-header", b"\r\njust a body"),
    ("empty", b""),
    ("top-rfc822", b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\nFrom: x@y\r\n\r\nbody\r\n"),
    ("rfc822-base64", b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
                      b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      b"U3ViamVjdDogeA0KDQp5DQo=\r\n--B--\r\n"),
    ("digest", b"Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: a\r\n\r\n"
               b"a\r\n--D\r\n\r\nSubject: b\r\n\r\nb\r\n--D--\r\n"),
    ("multipart-without-parts", b"Content-Type: multipart/mixed; boundary=Q\r\n\r\nno parts\r\n"),
    ("groups", b"To: team: a@x.example, b@x.example;, empty:;\r\nCc: \r\n\r\nx"),
    ("8bit-header", "Subject: café\r\nFrom: Inès <i@x.example>\r\n\r\nx".encode()),
    ("nul-in-header", b"Subject: a\x00b\r\nContent-Type: text/plain; name=\"\x00\"\r\n\r\nx"),
    ("trailing-semicolon", b"Content-Type: text/plain;\r\nContent-Disposition: inline;\r\n\r\nx"),
]


@pytest.mark.parametrize("raw", [c[1] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_corpus_obeys_the_grammar(raw: bytes) -> None:
    s, bs, body, _ = _summary(raw)
    assert bs.parts == [] or all(isinstance(p, Body) for p in bs.parts)
    # BODY is BODYSTRUCTURE without extension data (RFC 3501 7.4.2).
    assert body.extension == [] and _shape(body) == _shape(bs)
    out = enc.fetch(1, [("ENVELOPE", enc.Raw(s.envelope)), ("BODYSTRUCTURE",
                                                           enc.Raw(s.bodystructure))])
    parse_fetch(out)


def _shape(b: Body) -> object:
    if b.parts:
        return [_shape(p) for p in b.parts]
    return ["msg", _shape(b.message)] if b.message else b.type


# -- generated MIME trees ----------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    ctype: str
    text: bytes


@dataclass(frozen=True)
class Multi:
    subtype: str
    kids: tuple[object, ...]


@dataclass(frozen=True)
class Wrapped:
    """A message/rfc822 part around a message whose body is ``inner``."""

    subject: str
    inner: object


_TEXT = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n")
                                   .replace(b"-", b"_"))
_CTYPES = st.sampled_from(["text/plain", "text/html; charset=utf-8", "application/pdf;",
                           "image/png; name=\"a b.png\"", "text/plain;\r\n\tcharset=us-ascii"])
_TREES = st.recursive(
    st.builds(Leaf, _CTYPES, _TEXT),
    lambda inner: st.one_of(
        st.builds(Multi, st.sampled_from(["mixed", "alternative", "related"]),
                  st.lists(inner, min_size=1, max_size=3).map(tuple)),
        st.builds(Wrapped, st.sampled_from(["a", "b c"]), inner)),
    max_leaves=8)


class _Writer:
    def __init__(self, folded: bool) -> None:
        self.n = 0
        self.folded = folded

    def entity(self, node: object) -> bytes:
        """Header + body of one entity."""
        if isinstance(node, Leaf):
            return b"Content-Type: " + node.ctype.encode() + b"\r\n\r\n" + node.text
        if isinstance(node, Wrapped):
            return (b"Content-Type: message/rfc822\r\n\r\nSubject: " + node.subject.encode()
                    + b"\r\nTo: a@x.example, b@y.example\r\n" + self.entity(node.inner))
        assert isinstance(node, Multi)
        self.n += 1
        boundary = b"b%d=_x" % self.n
        quoted = (b'"' + boundary[:2] + b'\r\n ' + boundary[2:] + b'"') if self.folded else boundary
        boundary = boundary[:2] + b" " + boundary[2:] if self.folded else boundary
        out = (b"Content-Type: multipart/" + node.subtype.encode() + b"; boundary=" + quoted
               + b"\r\n\r\npreamble")
        for kid in node.kids:
            out += b"\r\n--" + boundary + b"\r\n" + self.entity(kid)
        return out + b"\r\n--" + boundary + b"--\r\nepilogue"


def _check(node: object, got: Body, raw: bytes, s: MessageSummary, path: tuple[int, ...],
           message_level: bool) -> None:
    """``path`` is the section number of ``node``, or of the message whose body it is."""
    if isinstance(node, Multi):
        assert got.type == b"MULTIPART" and got.subtype.upper() == node.subtype.upper().encode()
        assert len(got.parts) == len(node.kids)
        for i, (kid, part) in enumerate(zip(node.kids, got.parts, strict=True), 1):
            _check(kid, part, raw, s, path + (i,), False)
        return
    # the non-multipart body of a message is its part 1 (RFC 3501 6.4.5)
    here = path + (1,) if message_level else path
    if isinstance(node, Leaf):
        assert got.message is None and got.type == node.ctype.split("/")[0].upper().encode()
        assert fetch_section(raw, s.root, Section(here)) == node.text
        return
    assert isinstance(node, Wrapped)
    assert got.type == b"MESSAGE" and got.message is not None and got.envelope is not None
    assert got.envelope[1] == node.subject.encode()
    assert len(got.envelope[5]) == 2  # type: ignore[arg-type]
    embedded = fetch_section(raw, s.root, Section(here))
    header = fetch_section(raw, s.root, Section(here, "HEADER"))
    text = fetch_section(raw, s.root, Section(here, "TEXT"))
    assert header is not None and text is not None
    assert header.startswith(b"Subject: " + node.subject.encode())
    assert embedded == header + text  # [n] is the whole encapsulated message
    assert fetch_section(raw, s.root, Section(here, "MIME")) is not None
    _check(node.inner, got.message, raw, s, here, True)


@settings(max_examples=300, deadline=None)
@given(_TREES, st.booleans())
def test_generated_trees_obey_the_grammar_and_number_their_parts(tree: object,
                                                                 folded: bool) -> None:
    raw = b"From: a@x.example\r\nSubject: t\r\n" + _Writer(folded).entity(tree)
    s, bs, body, env = _summary(raw)
    assert _shape(body) == _shape(bs)
    _check(tree, bs, raw, s, (), True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=B\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain;\r\n", b"Content-Type: multipart/digest;\r\n boundary=\"B\"\r\n",
    b"From: a@b, (c) <d@e>, g: h@i;\r\n", b"To: \"x\\\" y\" <z@w>\r\n", b"\r\n", b"--B\r\n",
    b"--B--\r\n", b"text\r\n", b"\r\n--B\r\n",
    b"Content-Disposition: attachment; a=\"b\r\n c\"\r\n",
    b"Content-Language: fr, \r\n", b"Subject: \xc3\xa9t\xc3\xa9\r\n", b"X: \"\\\r\n",
]), max_size=25))
def test_mime_like_garbage_obeys_the_grammar(pieces: list[bytes]) -> None:
    _summary(b"".join(pieces))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_octets_obey_the_grammar(raw: bytes) -> None:
    _summary(raw)
