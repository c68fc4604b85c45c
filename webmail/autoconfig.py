"""Mail client set-up: Mozilla autoconfig and Outlook autodiscover, served by the HTTP listener.

* Thunderbird (and K-9 / Thunderbird mobile, Evolution) fetch
  ``/.well-known/autoconfig/mail/config-v1.1.xml`` or ``/mail/config-v1.1.xml``
  (``?emailaddress=`` optional), the "clientConfig 1.1" format of the Mozilla ISPDB.
* Outlook POSTs an autodiscover request to ``/autodiscover/autodiscover.xml`` (2006 "outlook"
  response schema); we answer with IMAP and SMTP settings.

Servers announced: only the listeners that run (``[listen]``; the runtime rewrites it with the
ports actually bound): IMAP with implicit TLS and/or STARTTLS, SMTP submission with implicit
TLS and/or STARTTLS, at the host name of the configuration.  A client is never sent to a port
where nothing listens; with no IMAP or no submission listener there is nothing to configure
(404 / autodiscover error).  Patients have no IMAP access: their domain gets 404 and an
autodiscover error.  Request bodies are parsed with defusedxml.  The autodiscover POST is
exempt from the webmail's CSRF check (no session, no side effect).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web
from defusedxml import ElementTree as SafeET
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from mailserver.config import ListenConfig

__all__ = ["setup_autoconfig", "mozilla_config", "autodiscover_response", "Endpoints",
           "ClientSetup"]

_AD_REQ = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
_AD_RESP = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
_AD_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
_MAX_BODY = 16 * 1024


class ClientSetup(Protocol):
    """The configuration values announced to mail clients (``mailserver.config.Config`` and
    ``webmail.deps.WebmailSettings`` both have them)."""

    @property
    def hostname(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def patient_domain(self) -> str: ...
    @property
    def extra_domains(self) -> tuple[str, ...]: ...
    @property
    def listen(self) -> ListenConfig: ...


class Endpoints:
    """Host name and ports announced to clients: ``None`` for a listener that does not run."""

    def __init__(self, config: ClientSetup) -> None:
        self.host = config.hostname
        self.imaps = _port(config.listen.imaps, 993)
        self.imap = _port(config.listen.imap, 143)
        self.submission = _port(config.listen.submission, 587)
        self.submissions = _port(config.listen.submissions, 465)

    def incoming(self) -> list[tuple[int, str]]:
        """(port, socketType) of the IMAP listeners, implicit TLS first (RFC 8314)."""
        return [(p, t) for p, t in ((self.imaps, "SSL"), (self.imap, "STARTTLS")) if p]

    def outgoing(self) -> list[tuple[int, str]]:
        """(port, socketType) of the submission listeners, implicit TLS first (RFC 8314)."""
        return [(p, t) for p, t in ((self.submissions, "SSL"), (self.submission, "STARTTLS"))
                if p]

    @property
    def usable(self) -> bool:
        return bool(self.incoming() and self.outgoing())


def _port(listen: str, default: int) -> int | None:
    """The port of a ``[listen]`` entry; None when the listener is not configured."""
    if not listen:
        return None
    _, _, port = listen.rpartition(":")
    return int(port) if port.isdigit() and int(port) > 0 else default


def _sub(parent: Any, tag: str, text: str | int | None = None) -> Any:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def mozilla_config(config: ClientSetup) -> bytes:
    """The clientConfig 1.1 document for the professional domain(s)."""
    ep = Endpoints(config)
    root = etree.Element("clientConfig", version="1.1")
    prov = _sub(root, "emailProvider")
    prov.set("id", config.domain)
    for domain in sorted({config.domain, *config.extra_domains}):
        _sub(prov, "domain", domain)
    _sub(prov, "displayName", f"MSSanté {config.domain}")
    _sub(prov, "displayShortName", "MSSanté")
    for port, socket in ep.incoming():
        srv = _sub(prov, "incomingServer")
        srv.set("type", "imap")
        for tag, value in (("hostname", ep.host), ("port", port), ("socketType", socket),
                           ("authentication", "password-cleartext"),
                           ("username", "%EMAILADDRESS%")):
            _sub(srv, tag, value)
    for port, socket in ep.outgoing():
        out = _sub(prov, "outgoingServer")
        out.set("type", "smtp")
        for tag, value in (("hostname", ep.host), ("port", port), ("socketType", socket),
                           ("authentication", "password-cleartext"),
                           ("username", "%EMAILADDRESS%")):
            _sub(out, tag, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def autodiscover_response(config: ClientSetup, email: str) -> bytes:
    """The Outlook autodiscover answer for ``email`` (an error for patients/unknown domains)."""
    ep = Endpoints(config)
    root = etree.Element("Autodiscover", nsmap={None: _AD_RESP})
    domain = email.rpartition("@")[2].lower()
    pro_domains = {config.domain, *config.extra_domains}
    if domain not in pro_domains or not ep.usable:
        resp = _sub(root, "Response")
        err = _sub(resp, "Error")
        _sub(err, "ErrorCode", 600)
        _sub(err, "Message", "No mail client access for this address: patients use the "
                             "secure webmail." if domain not in pro_domains else
                             "No mail client access is configured on this server.")
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    resp = etree.SubElement(root, "Response", nsmap={None: _AD_OUTLOOK})
    acct = _sub(resp, "Account")
    _sub(acct, "AccountType", "email")
    _sub(acct, "Action", "settings")
    # One entry per protocol (the first of each, implicit TLS preferred); "Encryption TLS"
    # is STARTTLS in the 2006a schema.
    (imap_port, imap_socket), (smtp_port, smtp_socket) = ep.incoming()[0], ep.outgoing()[0]
    for kind, port, ssl, enc in (
            ("IMAP", imap_port, "on", None if imap_socket == "SSL" else "TLS"),
            ("SMTP", smtp_port, "on", None if smtp_socket == "SSL" else "TLS")):
        proto = _sub(acct, "Protocol")
        _sub(proto, "Type", kind)
        _sub(proto, "Server", ep.host)
        _sub(proto, "Port", port)
        _sub(proto, "DomainRequired", "off")
        _sub(proto, "LoginName", email)
        _sub(proto, "SPA", "off")
        _sub(proto, "SSL", ssl)
        if enc:
            _sub(proto, "Encryption", enc)
        _sub(proto, "AuthRequired", "on")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _request_email(body: bytes) -> str | None:
    try:
        doc = SafeET.fromstring(body)
    except Exception:  # noqa: BLE001 - defusedxml raises several kinds; all mean "bad request"
        return None
    el = doc.find(f".//{{{_AD_REQ}}}EMailAddress")
    if el is None:
        el = doc.find(".//EMailAddress")
    return el.text.strip() if el is not None and el.text else None


def setup_autoconfig(app: web.Application, config: ClientSetup) -> None:
    """Add the autoconfig and autodiscover routes to ``app``."""
    xml = "application/xml"

    async def mozilla(request: web.Request) -> web.Response:
        email = request.query.get("emailaddress", "")
        if email and email.rpartition("@")[2].lower() == config.patient_domain:
            raise web.HTTPNotFound(text="Pas d'accès par logiciel de messagerie pour les "
                                        "patients : utilisez la messagerie sécurisée en ligne.")
        if not Endpoints(config).usable:
            raise web.HTTPNotFound(text="No IMAP or submission listener on this server.")
        return web.Response(body=mozilla_config(config), content_type=xml, charset="utf-8")

    async def autodiscover(request: web.Request) -> web.Response:
        body = await request.content.read(_MAX_BODY + 1) if request.can_read_body else b""
        if len(body) > _MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=_MAX_BODY, actual_size=len(body))
        email = _request_email(body) if body else request.query.get("emailaddress")
        if not email:
            raise web.HTTPBadRequest(text="autodiscover request without EMailAddress")
        return web.Response(body=autodiscover_response(config, email), content_type=xml,
                            charset="utf-8")

    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
        app.router.add_get(path, mozilla)
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"):
        app.router.add_post(path, autodiscover)
        app.router.add_get(path, autodiscover)
