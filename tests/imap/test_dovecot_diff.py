"""Differential test against a real Dovecot 2.3 (issue 14): the same corpus APPENDed to both,
then FETCH BODYSTRUCTURE, ENVELOPE, RFC822.SIZE, BODY[section] (and .MIME, HEADER, TEXT) for
every part, BINARY[section] for every leaf, SEARCH and SORT compared.

Both answers are parsed by the strict grammar of ``tests/imap_unit/grammar.py``; media types,
subtypes and parameter names are compared case-insensitively (RFC 2045 5.1), nothing else is
normalised.  A difference fails the test unless ``dovecot_allowlist.toml`` lists it with its
RFC citation and reason.  Dovecot runs privately (``bench/dovecot_reference.py``'s
configuration: temp dir, loopback, free port); the test is skipped when it cannot start.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.imap_unit.grammar import Body, check_fetch_lines

from .conftest import Imap, Raw, open_raw
from .dovecot_diff import Dovecot, allowlist, corpus, sections, start_dovecot, stop_dovecot

pytestmark = pytest.mark.e2e

SEARCHES = (
    "ALL", 'SUBJECT "test"', 'FROM "person"', 'TO "python"', 'CC "a"', 'BODY "the"',
    'TEXT "spam"', 'HEADER Content-Type "multipart"', 'HEADER X-Mailer ""',
    "NOT HEADER MIME-Version \"\"", "LARGER 2000", "SMALLER 600", "SENTBEFORE 1-Jan-2002",
    "SENTSINCE 1-Jan-2002", "SENTON 1-Jan-2026", "OR SUBJECT \"re\" FROM \"barry\"",
    'BODY "=C3"', 'SUBJECT "resultat"', 'SUBJECT "Résultat"', "UNSEEN", "1:5,30:*",
    'HEADER Message-ID "@"', 'BCC ""', 'TEXT "Python"',
)
SORTS = ("ARRIVAL", "DATE", "REVERSE DATE", "SUBJECT", "FROM", "TO", "CC", "SIZE",
         "DISPLAYFROM", "DISPLAYTO", "SUBJECT DATE", "REVERSE SIZE")
INTERNALDATE = '"01-Jan-2026 10:00:00 +0000"'


@dataclass
class Diffs:
    """Differences found, and those the allowlist explains."""

    found: list[tuple[str, str, object, object]] = field(default_factory=list)

    def compare(self, message: str, item: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            self.found.append((message, item, ours, theirs))


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    started = start_dovecot()
    if isinstance(started, str):
        pytest.skip(started)
    reference, proc, d = started
    try:
        yield reference
    finally:
        stop_dovecot(proc, d)


def _norm(value: object) -> object:
    """Body trees as nested tuples, media type names case-folded (RFC 2045 5.1)."""
    if isinstance(value, Body):
        params = [(k.lower(), v) for k, v in value.params] if value.params else value.params
        return (value.type.lower(), value.subtype.lower(), params,
                tuple(_norm(p) for p in value.parts), value.envelope, _norm(value.message),
                value.size, value.lines, value.extension)
    return value


async def _append_all(c: Raw, messages: list[tuple[str, bytes]]) -> None:
    for name, raw in messages:
        await c.write(b"ap APPEND INBOX %s {%d+}\r\n%s\r\n"
                      % (INTERNALDATE.encode(), len(raw), raw))
        res = await c.until("ap")
        assert res[-1].startswith(b"ap OK"), (name, res)


class Reference:
    """The connection to Dovecot, opened again when Dovecot drops it (it does so when a
    base64 part ends prematurely and BINARY is asked for)."""

    def __init__(self, dovecot: Dovecot, raw: Raw) -> None:
        self.dovecot = dovecot
        self.raw = raw

    async def cmd(self, text: str) -> list[bytes]:
        try:
            return await self.raw.cmd(text)
        except ConnectionError:
            self.raw = await self.dovecot.connect()
            await self.raw.cmd("SELECT INBOX")
            return [b"* DISCONNECTED\r\n", b"x BYE\r\n"]


async def _fetch(c: Raw | Reference, seq: int, items: str
                 ) -> tuple[bytes, dict[bytes, object]]:
    res = await c.cmd(f"FETCH {seq} ({items})")
    got = check_fetch_lines(res)
    merged: dict[bytes, object] = {}
    for g in got:
        merged.update(g)
    return res[-1].split()[1], merged


async def _compare_message(ours: Raw, theirs: Reference, seq: int, name: str, d: Diffs) -> None:
    base = "BODYSTRUCTURE ENVELOPE RFC822.SIZE"
    _, a = await _fetch(ours, seq, base)
    _, b = await _fetch(theirs, seq, base)
    for item in ("BODYSTRUCTURE", "ENVELOPE", "RFC822.SIZE"):
        d.compare(name, item, _norm(a.get(item.encode())), _norm(b.get(item.encode())))
    structure = b.get(b"BODYSTRUCTURE")
    assert isinstance(structure, Body), (name, b)
    parts = list(sections(structure))
    wanted = ["BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[]"]
    for sec, part in parts:
        wanted += [f"BODY.PEEK[{sec}]", f"BODY.PEEK[{sec}.MIME]"]
        if part.message is not None:
            wanted += [f"BODY.PEEK[{sec}.HEADER]", f"BODY.PEEK[{sec}.TEXT]"]
    _, a = await _fetch(ours, seq, " ".join(wanted))
    _, b = await _fetch(theirs, seq, " ".join(wanted))
    for key in sorted(set(a) | set(b)):
        d.compare(name, key.decode(), a.get(key), b.get(key))
    for sec, part in parts:
        if part.parts or part.message is not None:
            continue
        item = f"BINARY.PEEK[{sec}]"
        ok_a, a = await _fetch(ours, seq, item)
        ok_b, b = await _fetch(theirs, seq, item)
        key = f"BINARY[{sec}]"
        d.compare(name, key, (ok_a, a.get(key.encode())), (ok_b, b.get(key.encode())))


def _near(value: object, other: object) -> str:
    """``value`` shown from a little before where it differs from ``other``."""
    a, b = repr(value), repr(other)
    i = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), 0)
    return ("..." if i > 80 else "") + a[max(0, i - 80):i + 240]


def _numbers(lines: list[bytes], word: bytes) -> tuple[bytes, list[int]]:
    found = [x for x in lines if x.startswith(b"* " + word)]
    nums = [int(n) for x in found for n in re.findall(rb"\d+", x[len(word) + 2:])]
    return lines[-1].split()[1], nums


async def test_same_answers_as_dovecot(imap: Imap, dovecot: Dovecot) -> None:
    messages = corpus()
    ours, theirs = await open_raw(imap), Reference(dovecot, await dovecot.connect())
    for c in (ours, theirs.raw):
        await _append_all(c, messages)
        assert (await c.cmd("SELECT INBOX"))[-1].split()[1] == b"OK"
    d = Diffs()
    for seq, (name, _) in enumerate(messages, 1):
        await _compare_message(ours, theirs, seq, name, d)
    for criteria in SEARCHES:
        cmd = f"SEARCH CHARSET UTF-8 {criteria}"
        d.compare("*", f"SEARCH {criteria}", _numbers(await ours.cmd(cmd), b"SEARCH"),
                  _numbers(await theirs.cmd(cmd), b"SEARCH"))
    for keys in SORTS:
        cmd = f"SORT ({keys}) UTF-8 ALL"
        d.compare("*", f"SORT {keys}", _numbers(await ours.cmd(cmd), b"SORT"),
                  _numbers(await theirs.cmd(cmd), b"SORT"))
    await ours.close()
    await theirs.raw.close()
    allowed = allowlist()
    unexplained = [f for f in d.found if not any(a.matches(f[0], f[1]) for a in allowed)]
    report = "\n".join(f"{m} {i}:\n  ours:    {_near(o, t)}\n  dovecot: {_near(t, o)}"
                       for m, i, o, t in unexplained)
    assert not unexplained, f"{len(unexplained)} differences from Dovecot:\n{report}"
    unused = [a for a in allowed if not any(a.matches(f[0], f[1]) for f in d.found)]
    assert not unused, f"allowlist entries no longer needed: {unused}"

