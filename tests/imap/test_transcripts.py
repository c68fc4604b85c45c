"""Golden IMAP transcripts (tests/transcripts/imap_*.txt) replayed against the real server.

Format, one item per line:

* ``# text``: a comment; ``@append FOLDER file.eml [flags...]``: store a message first
  (the .eml files sit beside the transcripts; ``\\n`` line ends become CRLF);
* ``C: text``: sent with CRLF; ``${name}`` is replaced by a captured value;
* ``S: text``: the next response line must match (``${name}`` is substituted too).
  Literal octets are joined to their line and written with ``\\r\\n`` escapes;
  ``{regex}`` is a hole, ``{name=regex}`` a named hole whose match is captured;
  ``\\{`` and ``\\}`` stand for braces.  Every ``* n FETCH`` line received must also parse
  with the strict RFC 3501 9 grammar checker (tests/imap_unit/grammar.py).

The session starts logged in on implicit TLS (the greeting and LOGIN are not part of it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.imap_unit.grammar import parse_fetch

from .conftest import Imap, open_raw

HERE = Path(__file__).resolve().parent.parent / "transcripts"
FILES = sorted(HERE.glob("imap_*.txt"))


def compile_expected(text: str) -> re.Pattern[str]:
    """Turn an ``S:`` line into a regex (see the module docstring)."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1:i + 2] in ("{", "}"):
            out.append(re.escape(text[i + 1]))
            i += 2
        elif ch == "{":
            depth, j = 1, i + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            hole = text[i + 1:j - 1]
            m = re.match(r"([a-z_]+)=(.*)\Z", hole, re.DOTALL)
            out.append(f"(?P<{m.group(1)}>{m.group(2)})" if m else f"(?:{hole})")
            i = j
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def show(line: bytes) -> str:
    """A response line as written in transcripts."""
    return line[:-2].decode("latin-1").replace("\r\n", "\\r\\n")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_transcript(imap: Imap, path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("@append "):
            folder, name, *flags = line.split()[1:]
            raw = (HERE / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            await imap.services.store.append(imap.account_id, folder, raw, flags=flags)
    client = await open_raw(imap)
    captured: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if line.startswith("C: "):
            text = re.sub(r"\$\{(\w+)\}", lambda m: captured[m.group(1)], line[3:])
            await client.write(text.encode("utf-8") + b"\r\n")
        elif line.startswith("S: "):
            raw_line = await client.line()
            if re.match(rb"\* \d+ FETCH ", raw_line):
                parse_fetch(raw_line)  # every FETCH reply obeys RFC 3501 9 strictly
            got = show(raw_line)
            want = re.sub(r"\$\{(\w+)\}", lambda m: captured[m.group(1)], line[3:])
            m = compile_expected(want).match(got)
            assert m, f"{path.name}:{n}\nexpected: {line[3:]}\n     got: {got}"
            captured.update({k: v for k, v in m.groupdict().items() if v is not None})
    await client.close()
