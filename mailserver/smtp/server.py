"""SMTP listeners: submission (STARTTLS + AUTH required) and inbound (port-25 role).

aiosmtpd's Controller cannot bind port 0 (aiosmtpd issue #388), so listeners are created with
``loop.create_server`` directly and the bound port is read back.

``tls`` may be a context or a zero-argument callable returning one: the inbound listener takes
its context from the trust space for each connection, so CAs added with ``mssante trust add``
apply without a restart. That context *requests* a client certificate and completes the
handshake whatever the certificate (``trust.askcert``, Postfix ``smtpd_tls_ask_ccert``); the
chain's verdict, the DN and whether a certificate is required are decided at MAIL FROM by the
handler, which then answers with a clear 5xx instead of a failed handshake.

aiosmtpd 1.4 refuses every MAIL/RCPT parameter it does not know (555). :class:`OperatorSMTP`
takes the RFC 3461 DSN parameters (RET, ENVID on MAIL; NOTIFY, ORCPT on RCPT) off the command
line first, validates them, and keeps them on the session (``mss_dsn_mail``, ``mss_dsn_rcpt``)
for the handler.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from mailserver.config import Config
from mailserver.connlimit import ConnectionLimiter
from mailserver.delivery import Delivery
from mailserver.directory.service import Directory
from mailserver.listener import BalancedServer, WorkerLoad, serve_balanced
from mailserver.logs import quiet_protocol_libraries
from mailserver.smtp.handler import MailHandler, ReportSink
from mailserver.smtp.protocol import MailSMTP

log = logging.getLogger(__name__)

__all__ = ["OperatorSMTP", "ImplicitTlsSMTP", "start_smtp", "smtp_factory", "xtext_decode"]

quiet_protocol_libraries()

TlsSource = ssl.SSLContext | Callable[[], ssl.SSLContext]

_NOTIFY = {"SUCCESS", "FAILURE", "DELAY"}


def xtext_decode(value: str) -> str | None:
    """Decode RFC 3461 4 xtext (``+HH`` escapes); None when malformed."""
    out = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "+":
            pair = value[i + 1:i + 3]
            if len(pair) != 2 or any(c not in "0123456789ABCDEF" for c in pair):
                return None
            out.append(int(pair, 16))
            i += 3
            continue
        if not 33 <= ord(ch) <= 126 or ch == "=":
            return None
        out.append(ord(ch))
        i += 1
    return out.decode("utf-8", "replace")


def _split_params(arg: str, keys: set[str]) -> tuple[str, dict[str, str], bool]:
    """Take ``KEY=value`` parameters named in ``keys`` off a MAIL/RCPT argument.

    Returns (remaining argument, {KEY: value as sent}, duplicate seen).
    """
    words = arg.split(" ")
    kept: list[str] = []
    found: dict[str, str] = {}
    dup = False
    for i, word in enumerate(words):
        key, sep, value = word.partition("=")
        # Parameters follow the address: never touch the first word (the path itself).
        if i > 0 and sep and key.upper() in keys:
            if key.upper() in found:
                dup = True
            found[key.upper()] = value
        else:
            kept.append(word)
    return " ".join(kept), found, dup


class OperatorSMTP(MailSMTP):
    """:class:`MailSMTP` accepting the RFC 3461 DSN parameters."""

    async def smtp_MAIL(self, arg: str | None) -> None:
        """MAIL FROM with RET and ENVID (RFC 3461 4.3, 4.4) taken off first."""
        if arg and self.session is not None and self.session.extended_smtp:
            rest, params, dup = _split_params(arg, {"RET", "ENVID"})
            ret = params.get("RET", "").upper() or None
            envid = xtext_decode(params["ENVID"]) if "ENVID" in params else None
            if dup or (ret is not None and ret not in ("FULL", "HDRS")) or (
                    "ENVID" in params and (envid is None or len(params["ENVID"]) > 100)):
                await self.push("501 5.5.4 Invalid DSN parameter (RFC 3461)")
                return
            self.session.mss_dsn_mail = {"ret": ret, "envid": envid}  # type: ignore[attr-defined]
            self.session.mss_dsn_rcpt = {}  # type: ignore[attr-defined]
            arg = rest
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        """RCPT TO with NOTIFY and ORCPT (RFC 3461 4.1, 4.2) taken off first."""
        params: dict[str, str] = {}
        if arg and self.session is not None and self.session.extended_smtp:
            arg, params, dup = _split_params(arg, {"NOTIFY", "ORCPT"})
            notify = [v.upper() for v in params.get("NOTIFY", "").split(",") if v]
            orcpt = params.get("ORCPT")
            bad = dup or ("NOTIFY" in params and not (
                notify == ["NEVER"] or (notify and set(notify) <= _NOTIFY)))
            if orcpt is not None:
                kind, sep, addr = orcpt.partition(";")
                decoded = xtext_decode(addr) if sep else None
                bad = bad or not kind or decoded is None or len(orcpt) > 500
                params["ORCPT"] = f"{kind};{decoded}"
            if bad:
                await self.push("501 5.5.4 Invalid DSN parameter (RFC 3461)")
                return
            if notify:
                params["NOTIFY"] = ",".join(notify)
        before = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        await super().smtp_RCPT(arg)
        if params and self.envelope is not None and len(self.envelope.rcpt_tos) > before:
            addr = self.envelope.rcpt_tos[-1].strip().lower()
            table = getattr(self.session, "mss_dsn_rcpt", None)
            if table is None:
                table = {}
                self.session.mss_dsn_rcpt = table  # type: ignore[union-attr]
            table[addr] = {"notify": params.get("NOTIFY"), "orcpt": params.get("ORCPT")}


class _ImplicitTls:
    """Stands for aiosmtpd's STARTTLS protocol object on an implicit-TLS connection: aiosmtpd
    treats a connection as encrypted only when ``_tls_protocol`` is set."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._extra = {name: transport.get_extra_info(name)
                       for name in ("sslcontext", "ssl_object", "peercert", "cipher")}


class ImplicitTlsSMTP(OperatorSMTP):
    """Submission over implicit TLS (RFC 8314 3.3, the port-465 role): the TLS handshake is
    done by the listener before the greeting; STARTTLS is not offered."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if transport.get_extra_info("sslcontext") is not None and self.session is not None:
            marker = _ImplicitTls(transport)
            self._tls_protocol = marker  # type: ignore[assignment]
            self.session.ssl = marker._extra


def smtp_factory(config: Config, directory: Directory, delivery: Delivery, *, role: str,
                 tls: TlsSource, handler: object | None = None,
                 implicit_tls: bool = False,
                 reports: ReportSink | None = None) -> Callable[[], MailSMTP]:
    h = handler or MailHandler(config, directory, delivery, role=role, reports=reports)
    submission = role == "submission"
    cls = ImplicitTlsSMTP if implicit_tls else OperatorSMTP
    limiter = ConnectionLimiter(config.smtp.max_connections_per_address, "smtp")  # per listener

    def make() -> MailSMTP:
        ctx: Any = None if implicit_tls else (tls() if callable(tls) else tls)
        return cls(
            h,
            hostname=config.hostname,
            ident="mssante ESMTP",
            tls_context=ctx,
            # RFC 3207; inbound offers it, the trust space needs it.
            require_starttls=submission and not implicit_tls,
            auth_required=submission,
            auth_require_tls=True,  # AUTH is not even advertised before STARTTLS
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=config.smtp.idle_timeout,
            max_errors=config.smtp.max_bad_commands,
            header_size_limit=config.smtp.max_header_size or None,
            connection_limiter=limiter,
        )

    return make


async def start_smtp(config: Config, directory: Directory, delivery: Delivery, *, role: str,
                     host: str, port: int, tls: TlsSource,
                     handler: object | None = None, implicit_tls: bool = False,
                     reports: ReportSink | None = None,
                     sock: socket.socket | None = None,
                     load: WorkerLoad | None = None) -> asyncio.Server | BalancedServer:
    """Start an SMTP listener. ``implicit_tls`` (submission only) wraps every connection in TLS
    from the first byte (RFC 8314). ``reports`` sends the ``delivered`` DSNs (RFC 3461) the
    inbound role owes as the final MTA (none without it). ``sock``: an already listening
    socket, used instead of ``host``/``port``; with ``load`` (``serve --workers``) it is
    shared with the other workers and accepted fairly (:mod:`mailserver.listener`)."""
    if implicit_tls and role != "submission":
        raise ValueError("implicit TLS is for submission only")
    loop = asyncio.get_running_loop()
    factory = smtp_factory(config, directory, delivery, role=role, tls=tls, handler=handler,
                           implicit_tls=implicit_tls, reports=reports)
    ssl_ctx = (tls() if callable(tls) else tls) if implicit_tls else None
    if sock is not None and load is not None:
        return await serve_balanced(sock, factory, ssl_ctx, load)
    if sock is not None:
        return await loop.create_server(factory, sock=sock, ssl=ssl_ctx)
    return await loop.create_server(factory, host, port, reuse_address=True, ssl=ssl_ctx)
