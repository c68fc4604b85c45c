"""Autoconfig (Mozilla) and autodiscover (Outlook) routes, on a small aiohttp app."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from lxml import etree

from mailserver.config import Config, ListenConfig
from tests.conftest import DOMAIN, PATIENT_DOMAIN
from webmail.autoconfig import setup_autoconfig

AD_REQ = ("<?xml version='1.0'?><Autodiscover xmlns='http://schemas.microsoft.com/exchange/"
          "autodiscover/outlook/requestschema/2006'><Request><EMailAddress>{}</EMailAddress>"
          "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
          "responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>")


def _app(config: Config) -> web.Application:
    cfg = dataclasses.replace(config, listen=ListenConfig(imap="0.0.0.0:2543",
                                                          imaps="0.0.0.0:2593",
                                                          submission="0.0.0.0:2587"))
    app = web.Application()
    setup_autoconfig(app, cfg)
    return app


async def test_mozilla_autoconfig(aiohttp_client: Any, config: Config) -> None:
    client = await aiohttp_client(_app(config))
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml",
                 f"/mail/config-v1.1.xml?emailaddress=dr.martin@{DOMAIN}"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "application/xml"
        doc = etree.fromstring(await resp.read())
        servers = doc.findall(".//incomingServer")
        assert [(s.findtext("port"), s.findtext("socketType")) for s in servers] == [
            ("2593", "SSL"), ("2543", "STARTTLS")]
        assert {s.findtext("hostname") for s in servers} == {config.hostname}
        out = doc.find(".//outgoingServer")
        assert out.findtext("port") == "2587" and out.findtext("socketType") == "STARTTLS"
        assert doc.findtext(".//domain") == DOMAIN
    resp = await client.get(f"/mail/config-v1.1.xml?emailaddress=x@{PATIENT_DOMAIN}")
    assert resp.status == 404 and "patients" in await resp.text()


async def test_outlook_autodiscover(aiohttp_client: Any, config: Config) -> None:
    client = await aiohttp_client(_app(config))
    resp = await client.post("/autodiscover/autodiscover.xml",
                             data=AD_REQ.format(f"dr.martin@{DOMAIN}"))
    assert resp.status == 200
    doc = etree.fromstring(await resp.read())
    ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    protos = {p.findtext("a:Type", namespaces=ns): p for p in doc.findall(".//a:Protocol", ns)}
    assert protos["IMAP"].findtext("a:Port", namespaces=ns) == "2593"
    assert protos["IMAP"].findtext("a:SSL", namespaces=ns) == "on"
    assert protos["SMTP"].findtext("a:Port", namespaces=ns) == "2587"
    assert protos["IMAP"].findtext("a:LoginName", namespaces=ns) == f"dr.martin@{DOMAIN}"
    resp = await client.post("/Autodiscover/Autodiscover.xml",
                             data=AD_REQ.format(f"p@{PATIENT_DOMAIN}"))
    assert b"<ErrorCode>600</ErrorCode>" in await resp.read()
    bomb = ("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
            "<x>&b;</x>")
    assert (await client.post("/autodiscover/autodiscover.xml", data=bomb)).status == 400
