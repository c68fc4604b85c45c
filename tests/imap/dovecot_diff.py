"""Helpers of the differential test against Dovecot (``test_dovecot_diff.py``): the corpus,
a private Dovecot, the body sections of a BODYSTRUCTURE, and the reviewed allowlist."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.imap_unit.grammar import Body

from .conftest import Raw

ALLOWLIST = Path(__file__).with_name("dovecot_allowlist.toml")

#: Our own hostile MIME: what the CPython corpus lacks (each a name and the message).
HOSTILE: tuple[tuple[str, bytes], ...] = (
    ("hostile-unclosed", b"From: a@b.test\r\nSubject: unclosed\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\n"
     b"Content-Type: text/plain\r\n\r\nfirst\r\n--XX\r\nContent-Type: text/html\r\n\r\n"
     b"<p>never closed</p>\r\n"),
    ("hostile-nested", b"From: a@b.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\n"
     b"Content-Type: message/rfc822\r\n\r\nFrom: c@d.test\r\nSubject: inner\r\n"
     b"Content-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\n"
     b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     b"w6l0w6kgw6AgUGFyaXM=\r\n--B\r\nContent-Type: text/html\r\n"
     b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<b>=C3=A9t=C3=A9</b>=\r\n\r\n"
     b"--B--\r\n\r\n--A\r\nContent-Type: application/pdf; name=\"cr.pdf\"\r\n"
     b"Content-Disposition: attachment; filename*=UTF-8''compte%20rendu.pdf\r\n"
     b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--A--\r\n"),
    ("hostile-encoded-words", "From: =?UTF-8?B?w4lsb2TDrWU=?= <e@f.test>\r\n"
     "To: \"Dr, Martin\" <m@f.test>, undisclosed-recipients:;\r\n"
     "Subject: =?ISO-8859-1?Q?R=E9sultat?= =?UTF-8?Q?_d=27analyse?=\r\n"
     "Date: Tue, 3 Mar 2026 09:00:00 +0100\r\nMessage-ID: <enc@f.test>\r\n"
     "In-Reply-To: <x@y.test>\r\n\r\nCorps.\r\n".encode()),
    ("hostile-bad-base64", b"From: a@b.test\r\nSubject: bad b64\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     b"!!!not base64 at all***\r\nQUJD\r\n"),
    ("hostile-no-headers", b"\r\njust a body, no header at all\r\n"),
    ("hostile-params", b"From: a@b.test\r\nSubject: params\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: TEXT/Plain; CHARSET=\"us-ascii\"; format=flowed; x=\"a\\\"b\"\r\n"
     b"Content-Language: fr, en\r\nContent-Location: http://x.test/a\r\n"
     b"Content-ID: <cid@x>\r\nContent-Description: desc\r\n\r\nbody\r\n"),
)


def corpus() -> list[tuple[str, bytes]]:
    """CPython's email test messages (CRLF line ends) and :data:`HOSTILE`."""
    out: list[tuple[str, bytes]] = []
    try:
        import test.test_email as email_tests  # noqa: PLC0415 - optional stdlib test package
        data = Path(email_tests.__file__).parent / "data"
        for p in sorted(data.glob("msg_*.txt")):
            raw = p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            if b"\x00" not in raw:
                out.append((p.name, raw))
    except ImportError:
        pass
    return out + list(HOSTILE)


def sections(body: Body) -> Iterator[tuple[str, Body]]:
    """Every part's section number (RFC 3501 6.4.5) with its body structure."""
    if not body.parts:
        yield "1", body
        if body.message is not None:
            yield from _inner(body.message, "1")
        return
    yield from _parts(body, "")


def _parts(body: Body, prefix: str) -> Iterator[tuple[str, Body]]:
    for i, part in enumerate(body.parts, 1):
        sec = f"{prefix}{i}"
        yield sec, part
        if part.parts:
            yield from _parts(part, sec + ".")
        elif part.message is not None:
            yield from _inner(part.message, sec)


def _inner(message: Body, sec: str) -> Iterator[tuple[str, Body]]:
    if message.parts:
        yield from _parts(message, sec + ".")
    else:
        yield sec + ".1", message


@dataclass(frozen=True)
class Allowed:
    """One reviewed difference: where, and why it is right (the RFC)."""

    message: str
    item: str
    rfc: str
    reason: str

    def matches(self, message: str, item: str) -> bool:
        return self.message in ("*", message) and (
            self.item == item or (self.item.endswith("*") and item.startswith(self.item[:-1])))


def allowlist() -> list[Allowed]:
    """The entries of :data:`ALLOWLIST` (each must cite an RFC and give a reason)."""
    entries = tomllib.loads(ALLOWLIST.read_text()).get("difference", [])
    out = [Allowed(e["message"], e["item"], e["rfc"], e["reason"]) for e in entries]
    assert all(a.rfc.startswith("RFC ") and len(a.reason) > 20 for a in out)
    return out


@dataclass
class Dovecot:
    """A private Dovecot (``bench/dovecot_reference.py``'s configuration)."""

    port: int
    ctx: ssl.SSLContext
    user: str
    password: str

    async def connect(self) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.ctx,
                                                       server_hostname="localhost")
        raw = Raw(reader, writer)
        assert (await raw.line()).startswith(b"* OK")
        res = await raw.cmd(f'LOGIN "{self.user}" "{self.password}"')
        assert res[-1].split()[1] == b"OK", res
        return raw


def start_dovecot() -> tuple[Dovecot, subprocess.Popen[bytes], Path] | str:
    """Start Dovecot on a free loopback port; the reason it cannot run otherwise."""
    if shutil.which("dovecot") is None:
        return "dovecot is not installed (./scripts/test installs dovecot-imapd)"
    if os.geteuid() != 0:
        return "Dovecot's private instance needs root (it switches to its own users)"
    from bench import dovecot_reference as ref  # noqa: PLC0415 - the bench's set-up, reused

    d = Path(tempfile.mkdtemp(prefix="dovecot-diff-"))
    os.chmod(d, 0o755)  # noqa: S103 - dovecot's unprivileged users must traverse it
    ref.make_cert(d)
    port = ref.free_port()
    conf = ref.write_config(d, ref.free_port(), port, "PLAIN")
    proc = subprocess.Popen(["dovecot", "-c", str(conf), "-F"],  # noqa: S603, S607
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"dovecot exited ({proc.returncode}): see {d}/dovecot.log"
        try:
            import socket  # noqa: PLC0415
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        stop_dovecot(proc, d)
        return "dovecot did not listen in time"
    ctx = ssl.create_default_context(cafile=str(d / "cert.pem"))
    return Dovecot(port, ctx, ref.USER, ref.PASSWORD), proc, d


def stop_dovecot(proc: subprocess.Popen[bytes], d: Path) -> None:
    """SIGTERM the master we started, then remove its directory."""
    log = d / "dovecot.log"
    if log.exists():
        print("".join(ln + "\n" for ln in log.read_text().splitlines()
                      if "rror" in ln or "atal" in ln or "anic" in ln)[:3000])
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(d, ignore_errors=True)
