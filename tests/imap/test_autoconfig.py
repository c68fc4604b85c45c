"""Autoconfig (Mozilla) and autodiscover (Outlook) routes, on a small aiohttp app and through
the running server."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from mailserver.app import Services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import start_runtime
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


async def _connects(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


async def test_autodiscover_and_autoconfig_through_the_running_server(
        config: Config, services: Services) -> None:
    """The whole server as ``mssante serve`` builds it (all middlewares, CSRF check included):
    Outlook's POST is answered, and only listeners that run are announced (no IMAP STARTTLS
    here), each at a port where something really listens."""
    rt = await start_runtime(config, ListenConfig(imaps="127.0.0.1:0",
                                                  submission="127.0.0.1:0",
                                                  http="127.0.0.1:0"), services=services)
    try:
        host, port = rt.ports["http"]
        base = f"http://{host}:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/autodiscover/autodiscover.xml",
                                 data=AD_REQ.format(f"dr.martin@{DOMAIN}"),
                                 headers={"Content-Type": "text/xml"}) as resp:
                assert resp.status == 200, await resp.text()
                doc = etree.fromstring(await resp.read())
            async with http.get(f"{base}/.well-known/autoconfig/mail/config-v1.1.xml") as resp:
                assert resp.status == 200
                moz = etree.fromstring(await resp.read())
        ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/"
                   "2006a"}
        protos = {p.findtext("a:Type", namespaces=ns): p for p in doc.findall(".//a:Protocol", ns)}
        assert int(protos["IMAP"].findtext("a:Port", namespaces=ns)) == rt.ports["imaps"][1]
        assert int(protos["SMTP"].findtext("a:Port", namespaces=ns)) == rt.ports["submission"][1]
        incoming = [(int(s.findtext("port")), s.findtext("socketType"))
                    for s in moz.findall(".//incomingServer")]
        outgoing = [(int(s.findtext("port")), s.findtext("socketType"))
                    for s in moz.findall(".//outgoingServer")]
        assert incoming == [(rt.ports["imaps"][1], "SSL")]
        assert outgoing == [(rt.ports["submission"][1], "STARTTLS")]
        for announced, _ in incoming + outgoing:
            assert await _connects(host, announced)
    finally:
        rt.services = services
        await rt.close()


async def test_nothing_to_announce_without_mail_listeners(aiohttp_client: Any,
                                                          config: Config) -> None:
    app = web.Application()
    setup_autoconfig(app, dataclasses.replace(config, listen=ListenConfig(http="0.0.0.0:80")))
    client = await aiohttp_client(app)
    resp = await client.get("/mail/config-v1.1.xml")
    assert resp.status == 404
    resp = await client.post("/autodiscover/autodiscover.xml",
                             data=AD_REQ.format(f"dr.martin@{DOMAIN}"))
    assert b"<ErrorCode>600</ErrorCode>" in await resp.read()
