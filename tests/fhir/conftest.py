"""A real HTTP listener on 127.0.0.1:0 serving the webmail with ``/fhir`` mounted (as the runtime
does), and helpers for FHIR requests and ITI-65 bundles."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from dossier_bridge.fhir.app import FhirDeps, make_fhir_app
from dossier_bridge.fhir.provide import Provider
from dossier_bridge.store import DocumentStore
from dossier_bridge.tokens import TokenRepository
from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.runtime import webmail_deps
from tests.bridge.helpers import store_of
from webmail.app import start_http

INS_TEST = "urn:oid:1.2.250.1.213.1.4.10"
FHIR_JSON = "application/fhir+json"
SMALL_LIMIT = 300_000
_EXT = {"application/pdf": ".pdf", "text/xml": ".xml", "image/png": ".png"}


@dataclasses.dataclass
class Fhir:
    """The running server and the collaborators the tests inspect."""

    base: str
    session: aiohttp.ClientSession
    documents: DocumentStore
    tokens: TokenRepository
    services: Services

    async def token(self, account: AccountInfo) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.tokens.issue(account.id, 'test')}"}

    async def get(self, path: str, headers: dict[str, str], **params: str
                  ) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.get(f"{self.base}{path}", headers=headers,
                                    params=params or None) as r:
            body = await r.read()
            data = await r.json(content_type=None) if r.content_type == FHIR_JSON else body
            return r.status, data, r

    async def search(self, headers: dict[str, str], ins: str, **params: str
                     ) -> tuple[int, Any]:
        status, data, _r = await self.get("/DocumentReference", headers,
                                          **{"patient.identifier": f"{INS_TEST}|{ins}",
                                             "status": "current", **params})
        return status, data

    async def post(self, bundle: Any, headers: dict[str, str],
                   content_type: str = FHIR_JSON) -> tuple[int, Any]:
        async with self.session.post(self.base, data=json.dumps(bundle).encode(),
                                     headers={**headers, "Content-Type": content_type}) as r:
            return r.status, await r.json(content_type=None)


async def start(services: Services, *, trusted_proxies: tuple[str, ...] = ()
                ) -> tuple[aiohttp.ClientSession, Any, Fhir]:
    documents = store_of(services)
    tokens = TokenRepository(services.db)
    app = make_fhir_app(FhirDeps(
        documents=documents, directory=services.directory, tokens=tokens,
        provider=Provider(documents, services.directory.by_ins,
                          max_document_bytes=SMALL_LIMIT),
        trusted_proxies=trusted_proxies, profile=services.profile))
    runner, (host, port) = await start_http(webmail_deps(services), "127.0.0.1", 0,
                                            mounts={"/fhir": app})
    session = aiohttp.ClientSession()
    return session, runner, Fhir(f"http://{host}:{port}/fhir", session, documents, tokens,
                                 services)


@pytest.fixture
async def fhir(services: Services) -> AsyncIterator[Fhir]:
    session, runner, f = await start(services)
    try:
        yield f
    finally:
        await session.close()
        await runner.cleanup()


def basic(address: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{address}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def provide_bundle(ins: str, docs: list[tuple[bytes, str, str | None]], *,
                   list_ins: str | None = None, unique_ids: list[str] | None = None,
                   raw_data: list[str] | None = None) -> dict[str, Any]:
    """An ITI-65 transaction Bundle: one List, then a DocumentReference + Binary per
    (content, content type, LOINC type code)."""
    subject = {"identifier": {"system": INS_TEST, "value": ins}}
    entries: list[dict[str, Any]] = []
    refs = []
    for n, (content, ctype, type_code) in enumerate(docs):
        ref_url, bin_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        ref: dict[str, Any] = {
            "resourceType": "DocumentReference", "status": "current", "subject": subject,
            "masterIdentifier": {"system": "urn:ietf:rfc:3986",
                                 "value": (unique_ids or [])[n] if unique_ids
                                 else f"urn:oid:1.2.250.1.999.{uuid.uuid4().int % 10**9}"},
            "description": f"Document {n}",
            "content": [{"attachment": {"contentType": ctype, "url": bin_url,
                                        "title": f"doc{n}{_EXT.get(ctype, '')}"}}]}
        if type_code:
            ref["type"] = {"coding": [{"system": "http://loinc.org", "code": type_code}]}
        data = (raw_data or [])[n] if raw_data else base64.b64encode(content).decode()
        entries.append({"fullUrl": ref_url, "resource": ref,
                        "request": {"method": "POST", "url": "DocumentReference"}})
        entries.append({"fullUrl": bin_url, "resource": {
            "resourceType": "Binary", "contentType": ctype, "data": data},
            "request": {"method": "POST", "url": "Binary"}})
        refs.append(ref_url)
    submission = {
        "resourceType": "List", "status": "current", "mode": "working",
        "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                             "code": "submissionset"}]},
        "subject": {"identifier": {"system": INS_TEST, "value": list_ins or ins}},
        "entry": [{"item": {"reference": r}} for r in refs]}
    entries.insert(0, {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": submission,
                       "request": {"method": "POST", "url": "List"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
