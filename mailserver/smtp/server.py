"""SMTP listeners: submission (STARTTLS + AUTH required) and inbound (port-25 role).

aiosmtpd's Controller cannot bind port 0 (aiosmtpd issue #388), so listeners are created with
``loop.create_server`` directly and the bound port is read back.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from mailserver.config import Config
from mailserver.delivery import Delivery
from mailserver.directory.service import Directory
from mailserver.smtp.handler import MailHandler
from mailserver.smtp.protocol import MailSMTP

__all__ = ["start_smtp", "smtp_factory"]


def smtp_factory(config: Config, directory: Directory, delivery: Delivery, *, role: str,
                 tls: ssl.SSLContext, handler: object | None = None) -> Callable[[], MailSMTP]:
    h = handler or MailHandler(config, directory, delivery, role=role)
    submission = role == "submission"

    def make() -> MailSMTP:
        return MailSMTP(
            h,
            hostname=config.hostname,
            ident="mssante ESMTP",
            tls_context=tls,
            require_starttls=submission,  # RFC 3207; inbound offers it, the trust space needs it
            auth_required=submission,
            auth_require_tls=True,  # AUTH is not even advertised before STARTTLS
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=config.smtp.idle_timeout,
            max_errors=config.smtp.max_bad_commands,
        )

    return make


async def start_smtp(config: Config, directory: Directory, delivery: Delivery, *, role: str,
                     host: str, port: int, tls: ssl.SSLContext,
                     handler: object | None = None) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    factory = smtp_factory(config, directory, delivery, role=role, tls=tls, handler=handler)
    return await loop.create_server(factory, host, port, reuse_address=True)
