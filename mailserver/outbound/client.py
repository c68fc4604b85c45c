"""A small SMTP client for the outbound queue: STARTTLS, ESMTP extensions, RFC 2920 pipelining.

aiosmtplib reads one reply per command and drops replies that arrive together, so it cannot
pipeline (its ``read_response`` documents this). This client is built on asyncio streams:
replies are read line by line from a buffer, so a group of pipelined commands is written at once
and its replies read in order (RFC 2920 3.1).

Every operation has a timeout; any protocol or I/O problem raises :class:`SmtpClientError`
(the caller treats it as a temporary failure). TLS uses the caller's context, upgraded in place
(``StreamWriter.start_tls``, RFC 3207); the EHLO is repeated afterwards as RFC 3207 4.2 requires.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass

__all__ = ["SmtpClient", "SmtpClientError", "SmtpReply", "dot_stuff"]

_MAX_LINE = 4096
_MAX_LINES = 100
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")


class SmtpClientError(Exception):
    """Connection lost, timeout or malformed reply."""


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """A complete (possibly multi-line) reply."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


def dot_stuff(raw: bytes) -> bytes:
    """CRLF-normalise, dot-stuff (RFC 5321 4.5.2) and terminate a message for DATA."""
    body = _BARE_CR.sub(b"\r\n", _BARE_LF.sub(b"\r\n", raw))
    if body.startswith(b"."):
        body = b"." + body
    body = body.replace(b"\r\n.", b"\r\n..")
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


class SmtpClient:
    """One SMTP connection. Create with :meth:`connect`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float, local_hostname: str) -> None:
        self._reader = reader
        self._writer = writer
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.extensions: dict[str, str] = {}
        self.tls = False

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float,
                      local_hostname: str) -> SmtpClient:
        """Open the connection and read the greeting (must be 220)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=_MAX_LINE * 4), timeout)
        except (OSError, TimeoutError) as exc:
            raise SmtpClientError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        client = cls(reader, writer, timeout, local_hostname)
        greeting = await client.read_reply()
        if greeting.code != 220:
            client.close()
            raise SmtpClientError(f"greeting: {greeting}")
        return client

    # -- I/O ------------------------------------------------------------------------------

    async def read_reply(self) -> SmtpReply:
        """Read one complete reply (RFC 5321 4.2: ``code-text`` lines then ``code text``)."""
        lines: list[str] = []
        code = 0
        while True:
            try:
                line = await asyncio.wait_for(self._reader.readuntil(b"\n"), self.timeout)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError,
                    TimeoutError) as exc:
                raise SmtpClientError(f"reading reply: {type(exc).__name__}") from exc
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and
                                                           text[3] not in " -"):
                raise SmtpClientError("malformed reply line")
            if code and int(text[:3]) != code:
                raise SmtpClientError("inconsistent multi-line reply")
            code = int(text[:3])
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return SmtpReply(code, "\n".join(lines))
            if len(lines) > _MAX_LINES:
                raise SmtpClientError("reply too long")

    async def _write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise SmtpClientError(f"writing: {type(exc).__name__}") from exc

    async def command(self, line: str) -> SmtpReply:
        """Send one command line and read its reply."""
        await self._write(line.encode("utf-8") + b"\r\n")
        return await self.read_reply()

    async def pipeline(self, lines: list[str]) -> list[SmtpReply]:
        """RFC 2920: write a group of commands at once, then read their replies in order."""
        await self._write(b"".join(line.encode("utf-8") + b"\r\n" for line in lines))
        return [await self.read_reply() for _ in lines]

    # -- commands -------------------------------------------------------------------------

    async def ehlo(self) -> SmtpReply:
        """EHLO; records the advertised extensions (upper-cased keywords)."""
        reply = await self.command(f"EHLO {self.local_hostname}")
        if reply.code != 250:
            raise SmtpClientError(f"EHLO refused: {reply}")
        self.extensions = {}
        for item in reply.text.split("\n")[1:]:
            keyword, _, params = item.strip().partition(" ")
            if keyword:
                self.extensions[keyword.upper()] = params
        return reply

    def supports(self, extension: str) -> bool:
        """Was ``extension`` advertised in the last EHLO?"""
        return extension.upper() in self.extensions

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """RFC 3207 STARTTLS, then EHLO again. Certificate checks are the context's."""
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise SmtpClientError(f"STARTTLS refused: {reply}")
        try:
            await asyncio.wait_for(
                self._writer.start_tls(context, server_hostname=server_hostname),
                self.timeout)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            raise SmtpClientError(f"TLS handshake failed: {type(exc).__name__}: {exc}") from exc
        self.tls = True
        try:
            await self.ehlo()
        except SmtpClientError as exc:
            # TLS 1.3: the server checks our certificate after our side of the handshake ends.
            raise SmtpClientError(f"TLS session refused by the peer after the handshake "
                                  f"(our certificate not trusted?): {exc}") from exc

    def peer_certificate(self) -> bytes | None:
        """The peer's verified certificate (DER), once TLS is up."""
        ssl_obj = self._writer.get_extra_info("ssl_object")
        if ssl_obj is None:
            return None
        der = ssl_obj.getpeercert(binary_form=True)
        return bytes(der) if der else None

    async def data(self, raw: bytes) -> SmtpReply:
        """DATA: 354, then the dot-stuffed message; returns the final reply."""
        start = await self.command("DATA")
        if start.code != 354:
            return start
        await self._write(dot_stuff(raw))
        return await self.read_reply()

    async def rset(self) -> SmtpReply:
        """RSET (checks the connection is still usable)."""
        return await self.command("RSET")

    @property
    def alive(self) -> bool:
        """False once the connection is closed or lost."""
        return not self._writer.is_closing() and not self._reader.at_eof()

    async def quit(self) -> None:
        """QUIT politely (errors ignored), then close."""
        try:
            await asyncio.wait_for(self.command("QUIT"), 5)
        except (SmtpClientError, TimeoutError):
            pass
        self.close()

    def close(self) -> None:
        """Close the transport."""
        self._writer.close()
