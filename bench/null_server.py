"""An SMTP server that stores nothing: the "aiosmtpd that stores nothing" column of PERFORMANCE.md.

Runs aiosmtpd's stock ``SMTP`` or our ``MailSMTP`` on 127.0.0.1, with STARTTLS (a throw-away
CA made with trustme, written to ``--ca-out``) and an AUTH PLAIN that accepts any password.
Prints the port on stdout, then serves until killed.

    .venv/bin/python bench/null_server.py --impl fast --tls --ca-out /tmp/ca.pem
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402

from mailserver.smtp.protocol import MailSMTP  # noqa: E402


class NullHandler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 OK"


def accept_all(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=True)


def make_tls(ca_out: str | None) -> ssl.SSLContext:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    if ca_out:
        ca.cert_pem.write_to_path(ca_out)
    return ctx


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--impl", choices=["stock", "fast"], default="fast")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-out")
    args = p.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # stock Session.login_data warnings
    cls = SMTP if args.impl == "stock" else MailSMTP
    tls = make_tls(args.ca_out) if args.tls else None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(NullHandler(), hostname="bench.test", tls_context=tls,
                    authenticator=accept_all, data_size_limit=64 * 1024 * 1024),
        "127.0.0.1", args.port,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
