"""``mssante serve --imap/--imaps``: the runtime starts both IMAP listeners."""

from __future__ import annotations

import asyncio
import ssl

from mailserver.app import Services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import start_runtime
from tests.conftest import DOMAIN, PASSWORD, RPPS, add_pro


async def _login(host: str, port: int, tls: ssl.SSLContext, implicit: bool) -> bytes:
    if implicit:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls,
                                                       server_hostname="localhost")
    else:
        reader, writer = await asyncio.open_connection(host, port)
        await reader.readline()
        writer.write(b"s STARTTLS\r\n")
        assert (await reader.readline()).startswith(b"s OK")
        await writer.start_tls(tls, server_hostname="localhost")
        writer.write(b"c CAPABILITY\r\n")
        await reader.readline()
    if implicit:
        await reader.readline()
    writer.write(f'l LOGIN dr.martin@{DOMAIN} "{PASSWORD}"\r\n'.encode())
    line = await reader.readline()
    while not line.startswith(b"l "):
        line = await reader.readline()
    writer.close()
    return line


async def test_runtime_serves_imap_and_imaps(config: Config, services: Services,
                                             client_tls: ssl.SSLContext) -> None:
    await add_pro(services, "dr.martin", RPPS[0])
    rt = await start_runtime(config, ListenConfig(imap="127.0.0.1:0", imaps="127.0.0.1:0"),
                             services=services)
    try:
        for name, implicit in (("imap", False), ("imaps", True)):
            host, port = rt.ports[name]
            assert (await _login(host, port, client_tls, implicit)).startswith(b"l OK")
    finally:
        rt.services = services
        await rt.close()
