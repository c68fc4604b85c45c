"""Fixtures for the webmail tests: the app under aiohttp's test client, a patient with their
letter's code, a professional, and helpers to walk the journeys."""

from __future__ import annotations

import dataclasses
import email
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from mailserver.app import Services, open_services
from mailserver.config import Config
from mailserver.directory.service import AccountInfo
from mailserver.runtime import webmail_deps
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from webmail.app import make_app

NIR = INS[0][:13]
VITALE = "1234567890123"
LOGIN = "marie.dupont"
PATIENT_PASSWORD = "Tulipe-Orange-42!"  # noqa: S105 - test credential
CONTACT = "marie@perso.example"


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    return dataclasses.replace(config, webmail=dataclasses.replace(
        config.webmail, secure_cookies=False, base_url="http://webmail.test"))


@pytest.fixture
async def services(config: Config) -> AsyncIterator[Services]:  # type: ignore[override]
    s = await open_services(config, fast_passwords=True)
    try:
        yield s
    finally:
        await s.close()


@dataclass
class World:
    services: Services
    client: TestClient  # type: ignore[type-arg]
    patient: AccountInfo
    code: str
    pro: AccountInfo
    outbox: Path

    def outbox_messages(self) -> list[EmailMessage]:
        out = []
        for p in sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []:
            msg = email.message_from_bytes(p.read_bytes(), policy=default_policy)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def last_code(self) -> str:
        msgs = [m for m in self.outbox_messages() if "code" in str(m["Subject"]).lower()]
        assert msgs, "no one-time code mailed"
        body = msgs[-1].get_body(preferencelist=("plain",))
        assert body is not None
        match = re.search(r"\b(\d{6})\b", body.get_content())
        assert match
        return match.group(1)

    async def csrf(self, path: str = "/connexion") -> str:
        resp = await self.client.get(path)
        html = await resp.text()
        match = re.search(r'name="csrf" value="([^"]+)"', html)
        assert match, html[:500]
        return match.group(1)

    async def post(self, path: str, data: dict[str, Any], *, csrf_from: str | None = None,
                   **kw: Any) -> Any:
        token = await self.csrf(csrf_from or path)
        return await self.client.post(path, data={**data, "csrf": token},
                                      allow_redirects=False, **kw)

    async def first_connection(self, identifier: str = LOGIN,
                               password: str = PATIENT_PASSWORD) -> None:
        r = await self.post("/premiere-connexion", {"code": self.code, "nir": NIR,
                                                    "vitale": VITALE})
        assert r.status == 303, await r.text()
        r = await self.post("/premiere-connexion/identifiants", {
            "identifier": identifier, "password": password, "password2": password,
            "email": CONTACT, "phone": "06 12 34 56 78"})
        assert r.status == 303, await r.text()

    async def login(self, identifier: str = LOGIN, password: str = PATIENT_PASSWORD) -> None:
        r = await self.post("/connexion", {"identifier": identifier, "password": password})
        assert r.status == 303, await r.text()
        r = await self.post("/connexion/code", {"code": self.last_code()})
        assert r.status == 303, await r.text()
        assert r.headers["Location"] == "/conversations"

    async def pro_writes(self, subject: str = "Résultats", body: str = "Bonjour",
                         *, headers: dict[str, str] | None = None, html: str | None = None,
                         attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
                         refs: str = "") -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"Dr Martin <{self.pro.address}>"
        msg["To"] = self.patient.address
        msg["Subject"] = subject
        msg["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
        msg["Date"] = email.utils.formatdate()
        if refs:
            msg["In-Reply-To"] = refs
            msg["References"] = refs
        for k, v in (headers or {}).items():
            msg[k] = v
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for name, ctype, data in attachments:
            main, _, sub = ctype.partition("/")
            msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
        party = await self.services.delivery.party_of(self.pro)
        report = await self.services.delivery.deliver(
            party, self.pro.address, [self.patient.address], bytes(msg),
            authenticated=self.pro)
        assert report.accepted == [self.patient.address]
        return msg

    async def conversation_ids(self) -> list[int]:
        convs = await self.services.conversations.list_for_patient(self.patient.id)
        return [c.id for c in convs]


import email.utils  # noqa: E402


@pytest.fixture
async def world(services: Services, config: Config, aiohttp_client: Any) -> World:
    client = await aiohttp_client(make_app(webmail_deps(services)))
    patient, code = await services.directory.add_patient(
        ins=INS[0], name="Marie Dupont", contact={"email": "ancienne@perso.example"})
    pro = await services.directory.add_professional(
        rpps=RPPS[0], email=f"dr.martin@{DOMAIN}", name="Dr Claire Martin", profession="10",
        password=PASSWORD)
    return World(services, client, patient, code, pro, config.path(config.webmail.outbox_dir))


@pytest.fixture
async def logged_in(world: World) -> World:
    await world.first_connection()
    await world.login()
    return world
