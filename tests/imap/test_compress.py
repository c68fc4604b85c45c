"""COMPRESS=DEFLATE (RFC 4978) over the real server: after the tagged OK both directions are
raw deflate streams; a second COMPRESS is refused; pipelined and large answers inflate."""

from __future__ import annotations

import asyncio
import zlib

from .conftest import Imap, message, open_raw


class Deflated:
    """The client side of a compressed IMAP stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inp = zlib.decompressobj(-15)
        self.buf = b""

    async def cmd(self, tag: str, text: bytes) -> bytes:
        self.writer.write(self.out.compress(tag.encode() + b" " + text + b"\r\n")
                          + self.out.flush(zlib.Z_SYNC_FLUSH))
        await self.writer.drain()
        end = tag.encode() + b" "
        while not any(line.startswith(end) for line in self.buf.split(b"\r\n")):
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            assert data, self.buf
            self.buf += self.inp.decompress(data)
        out, self.buf = self.buf, b""
        return out


async def test_compress_deflate_both_ways(imap: Imap) -> None:
    c = await open_raw(imap)
    assert b"COMPRESS=DEFLATE" in (await c.cmd("CAPABILITY"))[0]
    for n in range(1, 4):
        data = message(n, body="Ligne de compte rendu.\r\n" * 200)
        await c.write(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(data), data))
        assert (await c.until("ap"))[-1].startswith(b"ap OK")
    assert (await c.cmd("COMPRESS GZIP"))[-1].split()[1] == b"BAD"
    assert (await c.cmd("COMPRESS DEFLATE"))[-1].split()[1] == b"OK"
    z = Deflated(c.reader, c.writer)
    res = await z.cmd("a1", b"SELECT INBOX")
    assert b"* 3 EXISTS" in res and b"a1 OK" in res
    res = await z.cmd("a2", b"FETCH 1:3 (BODY.PEEK[TEXT])")
    assert res.count(b"Ligne de compte rendu.") == 600 and b"a2 OK" in res
    res = await z.cmd("a3", b"COMPRESS DEFLATE")
    assert b"a3 NO [COMPRESSIONACTIVE]" in res
    assert b"a4 OK" in await z.cmd("a4", b"LOGOUT")
    c.writer.close()
