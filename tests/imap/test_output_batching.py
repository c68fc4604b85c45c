"""Output batching in the IMAP driver: one write per command, same bytes, bounded buffer."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from mailserver.app import Services
from mailserver.imap import server as srv
from tests.conftest import PASSWORD, add_pro
from tests.imap.conftest import USER, message


class SpyWriter:
    """Records each ``write`` call (a StreamWriter stand-in)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def _run(services: Services, script: bytes) -> SpyWriter:
    reader = asyncio.StreamReader()
    reader.feed_data(script)
    reader.feed_eof()
    writer = SpyWriter()
    conn = srv.Connection(services.imap_backend(), reader, writer, ssl.create_default_context(),  # type: ignore[arg-type]
                          implicit_tls=True)
    await conn.run()
    return writer


async def test_fetch_of_many_messages_is_one_write(services: Services) -> None:
    acct = await add_pro(services, "dr.martin")
    for n in range(1, 31):
        await services.store.append(acct.id, "INBOX", message(n))
    script = (f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\n"
              "c FETCH 1:30 (UID FLAGS ENVELOPE)\r\nd LOGOUT\r\n").encode()
    w = await _run(services, script)
    fetch_writes = [x for x in w.writes if b"* 1 FETCH" in x]
    assert len(fetch_writes) == 1
    chunk = fetch_writes[0]
    assert chunk.count(b" FETCH (") == 30
    assert chunk.endswith(b"c OK FETCH completed\r\n")
    # One write per command (greeting, LOGIN, SELECT, FETCH, LOGOUT), in order.
    out = b"".join(w.writes)
    assert out.index(b"a OK") < out.index(b"* 30 EXISTS") < out.index(b"b OK") \
        < out.index(b"* 1 FETCH") < out.index(b"* 30 FETCH") < out.index(b"c OK") \
        < out.index(b"* BYE") < out.index(b"d OK")
    assert len(w.writes) == 5


async def test_buffer_is_flushed_past_the_limit(services: Services, monkeypatch: Any) -> None:
    acct = await add_pro(services, "dr.martin")
    for n in range(1, 11):
        await services.store.append(acct.id, "INBOX", message(n, body="x" * 2000 + "\r\n"))
    monkeypatch.setattr(srv, "FLUSH_LIMIT", 4096)
    script = (f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\n"
              "c FETCH 1:10 (BODY.PEEK[])\r\nd LOGOUT\r\n").encode()
    w = await _run(services, script)
    fetch_writes = [x for x in w.writes if b" FETCH (" in x]
    assert len(fetch_writes) >= 3  # ~2 KiB per message, 4 KiB limit
    assert all(len(x) <= 4096 + 4096 for x in fetch_writes)
    out = b"".join(w.writes)
    assert out.count(b" FETCH (") == 10
    assert out.index(b"* 10 FETCH") < out.index(b"c OK FETCH completed")
