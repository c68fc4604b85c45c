"""``/fhir/``: IHE MHD over FHIR R4 for professionals' software (an aiohttp sub-application).

Theory of operation
-------------------
* **Interactions.** ITI-67 Find Document References (``GET DocumentReference?patient.identifier=
  <INS system>|<INS>&status=current[&type=][&category=][&date=]``), a DocumentReference read,
  ITI-68 Retrieve Document (``GET Binary/<patient>-<document>``, the ``attachment.url``: the
  document's bytes), ITI-65 Provide Document Bundle (``POST`` to the base, see
  `dossier_bridge.fhir.provide`) and ``GET metadata``. JSON only.
* **Authentication.** HTTP Basic with the mailbox credentials, through the directory's
  ``authenticate`` (so its back-off and lockout apply), refused on plain HTTP except from the
  loopback address (RFC 7617 4: Basic sends the password in clear); or ``Authorization: Bearer``
  with a token of `dossier_bridge.tokens` (``mssante token issue``). Professionals only.
* **Access.** Every search and read resolves the viewer with `Consents.viewer` and reads through
  `DocumentStore`, the same decision as everywhere else (consent for a team or structure, the
  profession × label matrix, masking, the treating doctor); `DocumentStore.read` writes the
  access-log entry of every ITI-68 retrieval. A search by a professional without consent (or for
  an INS the server does not know: the two are answered alike, so nothing about the patient
  leaks) is a 403 OperationOutcome; so is a read of a document that does not exist or that the
  viewer may not see (one answer for both, so ids cannot be probed).
* **CSRF.** Browsers replay Basic credentials on their own; ``POST`` requires a FHIR/JSON
  content type, which a cross-site form cannot send without a CORS preflight this app never
  answers.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from dossier_bridge.access import ViewerRole
from dossier_bridge.errors import DocumentNotFound
from dossier_bridge.fhir.mapping import (
    CLASS_SYSTEM,
    FHIR_JSON,
    INS_SYSTEMS,
    LABEL_SYSTEM,
    References,
    capability_statement,
    class_code_of,
    document_reference,
    outcome,
    searchset,
    split_token,
)
from dossier_bridge.fhir.provide import Provided, ProvideError, Provider
from dossier_bridge.store import DocumentInfo, DocumentStore
from dossier_bridge.tokens import TokenRepository
from mailserver.directory.service import AccountInfo
from mailserver.errors import AuthError, NotFound

__all__ = ["FhirDirectory", "FhirDeps", "make_fhir_app", "MAX_BUNDLE_BYTES"]

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 48 * 1024 * 1024
"""An ITI-65 request body (base64 inflates the 25 MB document limit by 4/3)."""
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FhirDirectory(Protocol):
    """What the FHIR app needs from the directory."""

    async def authenticate(self, identifier: str, password: str, *, client: str | None = None,
                           allow_patients: bool = False) -> AccountInfo: ...

    async def get(self, account_id: int) -> AccountInfo: ...

    async def by_ins(self, ins: str) -> AccountInfo | None: ...


@dataclass(frozen=True, slots=True)
class FhirDeps:
    """The FHIR app's collaborators (built by the composition root)."""

    documents: DocumentStore
    directory: FhirDirectory
    tokens: TokenRepository
    provider: Provider
    trusted_proxies: tuple[str, ...] = ()


DEPS = web.AppKey("fhir_deps", FhirDeps)
REFERENCES = web.AppKey("fhir_references", References)


class _Refused(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def _fhir(data: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.Response(status=status, body=json.dumps(data, ensure_ascii=False).encode(),
                        content_type=FHIR_JSON, charset="utf-8",
                        headers={"Cache-Control": "no-store", **headers})


def _peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else (request.remote or "")


def _secure(request: web.Request, trusted: tuple[str, ...]) -> bool:
    """HTTPS (directly or from a trusted proxy saying so), or a loopback client."""
    if request.transport is not None and request.transport.get_extra_info("sslcontext"):
        return True
    peer = _peer(request)
    if peer in trusted:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1]
        return proto.strip().lower() == "https"
    try:
        return ipaddress.ip_address(peer.split("%")[0]).is_loopback
    except ValueError:
        return False


def _base(request: web.Request, deps: FhirDeps) -> str:
    tls = request.transport is not None and bool(request.transport.get_extra_info("sslcontext"))
    if _peer(request) in deps.trusted_proxies:
        tls = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip() == "https"
    return f"{'https' if tls else 'http'}://{request.host}/fhir"


async def _account(request: web.Request) -> AccountInfo:
    deps = request.app[DEPS]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        account_id = await deps.tokens.resolve(value.strip())
        account = await _get(deps, account_id) if account_id is not None else None
    elif scheme == "basic":
        if not _secure(request, deps.trusted_proxies):
            raise _Refused(403, "security", "HTTPS requis pour l'authentification Basic.")
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _Refused(401, "login", "Authentification requise.") from exc
        try:
            account = await deps.directory.authenticate(user, password, client=_peer(request))
        except AuthError as exc:
            log.info("fhir: authentication refused")
            raise _Refused(401, "login", "Identifiants refusés.") from exc
    else:
        raise _Refused(401, "login", "Authentification requise.")
    if account is None or account.is_patient or account.status != "open":
        raise _Refused(401, "login", "Identifiants refusés.")
    return account


async def _get(deps: FhirDeps, account_id: int) -> AccountInfo | None:
    try:
        return await deps.directory.get(account_id)
    except NotFound:
        return None


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Refused as exc:
        extra = {"WWW-Authenticate": 'Basic realm="fhir", Bearer'} if exc.status == 401 else {}
        return _fhir(outcome(exc.code, exc.text), exc.status, **extra)
    except web.HTTPException as exc:
        return _fhir(outcome("not-found" if exc.status == 404 else "invalid", exc.reason),
                     exc.status)
    except Exception:
        log.exception("fhir: server error on %s", request.method)
        return _fhir(outcome("exception", "Erreur interne."), 500)


def _ins_param(request: web.Request) -> tuple[str, str]:
    value = request.query.get("patient.identifier", "")
    system, ins = split_token(value)
    if system not in INS_SYSTEMS or not ins.strip():
        raise _Refused(400, "required", "patient.identifier=<système INS>|<INS> est requis.")
    return str(system), ins.strip().upper()


def _date_test(prefix: str, when: datetime, day: bool) -> Callable[[datetime], bool]:
    """One FHIR date comparison (a bare day compares on the whole day)."""
    if day:
        w = when.date()
        return {"ge": lambda d: d.date() >= w, "gt": lambda d: d.date() > w,
                "le": lambda d: d.date() <= w, "lt": lambda d: d.date() < w,
                "eq": lambda d: d.date() == w}[prefix]
    return {"ge": lambda d: d >= when, "gt": lambda d: d > when, "le": lambda d: d <= when,
            "lt": lambda d: d < when, "eq": lambda d: d == when}[prefix]


def _date_filter(values: list[str]) -> Callable[[datetime], bool]:
    tests: list[Callable[[datetime], bool]] = []
    for raw in values:
        prefix, rest = (raw[:2], raw[2:]) if raw[:2] in ("ge", "gt", "le", "lt", "eq") \
            else ("eq", raw)
        try:
            when = datetime.fromisoformat(rest)
        except ValueError as exc:
            raise _Refused(400, "invalid", "Paramètre date invalide.") from exc
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        tests.append(_date_test(prefix, when, len(rest) == 10))
    return lambda d: all(t(d) for t in tests)


def _token_match(values: list[str], codes: Callable[[str | None], set[str]]) -> bool:
    """True when one comma-separated token of every ``values`` item matches (AND of ORs)."""
    for value in values:
        if not any(code in codes(system) for system, code in
                   (split_token(v) for v in value.split(","))):
            return False
    return True


def _matches(info: DocumentInfo, request: web.Request) -> bool:
    types = request.query.getall("type", [])
    if types and not _token_match(types, lambda _s: {info.type_code or ""}):
        return False
    cats = request.query.getall("category", [])

    def categories(system: str | None) -> set[str]:
        if system == LABEL_SYSTEM:
            return {info.label.value}
        return {class_code_of(info)} if system in (None, CLASS_SYSTEM) else set()

    if cats and not _token_match(cats, categories):
        return False
    return _date_filter(request.query.getall("date", []))(info.filed_at)


async def _viewable_patient(request: web.Request, account: AccountInfo, ins: str
                            ) -> AccountInfo:
    """The patient whose record ``account`` may search: 403 for no consent or unknown INS."""
    deps = request.app[DEPS]
    patient = await deps.directory.by_ins(ins)
    if patient is not None and patient.is_patient and patient.status == "open":
        viewer = await deps.documents.consents.viewer(account, patient.id)
        if viewer.role in (ViewerRole.CONSENTED, ViewerRole.TREATING_DOCTOR):
            return patient
    raise _Refused(403, "forbidden", "Aucun document accessible : le patient n'a pas donné son "
                                     "consentement à votre équipe de soins ou à votre "
                                     "structure, ou son INS est inconnu.")


async def find_document_references(request: web.Request) -> web.Response:
    """ITI-67."""
    deps = request.app[DEPS]
    account = await _account(request)
    system, ins = _ins_param(request)
    statuses = ",".join(request.query.getall("status", ["current"])).split(",")
    patient = await _viewable_patient(request, account, ins)
    base = _base(request, deps)
    refs = []
    if "current" in statuses:
        viewer = await deps.documents.consents.viewer(account, patient.id)
        docs = await deps.documents.list_for(viewer, patient.id)
        refs = [request.app[REFERENCES].json(d, (system, ins), base) for d in docs
                if _matches(d, request)]
    return _fhir(searchset(refs, base, f"{base}/DocumentReference?{request.query_string}"))


async def _open_patient(deps: FhirDeps, patient_id: int) -> AccountInfo:
    """The patient of a document id, if their space is open (a closed one shows nothing)."""
    patient = await deps.directory.get(patient_id)
    if not patient.is_patient or patient.status != "open":
        raise NotFound("no open patient space")
    return patient


def _ids(request: web.Request) -> tuple[int, int]:
    patient, _, doc = request.match_info["id"].partition("-")
    if not (patient.isdigit() and doc.isdigit()):
        raise _Refused(403, "forbidden", "Document introuvable ou accès refusé.")
    return int(patient), int(doc)


async def read_document_reference(request: web.Request) -> web.Response:
    """``GET DocumentReference/<id>`` (metadata only: not an access-log read)."""
    deps = request.app[DEPS]
    account = await _account(request)
    patient_id, doc_id = _ids(request)
    try:
        patient = await _open_patient(deps, patient_id)
        info = await deps.documents.get(account, patient_id, doc_id)
    except (DocumentNotFound, NotFound) as exc:
        raise _Refused(403, "forbidden", "Document introuvable ou accès refusé.") from exc
    ref = document_reference(info, (INS_SYSTEMS[0], patient.ins or ""), _base(request, deps))
    return _fhir(ref.model_dump(mode="json", exclude_none=True))


async def retrieve_document(request: web.Request) -> web.Response:
    """ITI-68: the document's bytes (the read is in the patient's access log)."""
    deps = request.app[DEPS]
    account = await _account(request)
    patient_id, doc_id = _ids(request)
    try:
        await _open_patient(deps, patient_id)
        info, content = await deps.documents.read(account, patient_id, doc_id)
    except (DocumentNotFound, NotFound) as exc:
        raise _Refused(403, "forbidden", "Document introuvable ou accès refusé.") from exc
    return web.Response(body=content, content_type=info.mime_type or "application/octet-stream",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Disposition": "attachment"})


async def _body(request: web.Request) -> Any:
    if request.content_type not in (FHIR_JSON, "application/json"):
        raise _Refused(415, "not-supported", "Content-Type application/fhir+json attendu.")
    if (request.content_length or 0) > MAX_BUNDLE_BYTES:
        raise _Refused(413, "too-costly", "Lot trop volumineux.")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BUNDLE_BYTES:
            raise _Refused(413, "too-costly", "Lot trop volumineux.")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refused(400, "invalid", "JSON invalide.") from exc


def _response_entries(data: Any, provided: list[Provided], patient_of: int
                      ) -> list[dict[str, Any]]:
    by_url = {p.full_url: ("DocumentReference", p) for p in provided}
    by_url.update({p.binary_url: ("Binary", p) for p in provided})
    out = []
    for entry in data.get("entry") or []:
        found = by_url.get(str(entry.get("fullUrl", "")))
        if found is None:
            out.append({"response": {"status": "200 OK"}})
            continue
        kind, p = found
        status = "201 Created" if p.result.created else "200 OK"
        out.append({"response": {
            "status": status, "location": f"{kind}/{patient_of}-{p.result.document_id}"}})
    return out


async def provide_document_bundle(request: web.Request) -> web.Response:
    """ITI-65: a transaction Bundle (List, DocumentReference, Binary) filed in one go."""
    deps = request.app[DEPS]
    account = await _account(request)
    data = await _body(request)
    try:
        patient_id, provided = await deps.provider.provide(account, data)
    except ProvideError as exc:
        log.info("fhir: submission refused status=%d", exc.status)
        raise _Refused(exc.status, exc.code, exc.text) from exc
    bundle = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": _response_entries(data, provided, patient_id)}
    return _fhir(bundle)


async def metadata(request: web.Request) -> web.Response:
    """The CapabilityStatement (no authentication: it says nothing about patients)."""
    return _fhir(capability_statement(_base(request, request.app[DEPS])))


def make_fhir_app(deps: FhirDeps) -> web.Application:
    """The sub-application, to mount with ``app.add_subapp("/fhir", make_fhir_app(deps))``."""
    app = web.Application(middlewares=[_errors])
    app[DEPS] = deps
    app[REFERENCES] = References()
    app.router.add_get("/metadata", metadata)
    app.router.add_get("/DocumentReference", find_document_references)
    app.router.add_get("/DocumentReference/{id}", read_document_reference)
    app.router.add_get("/Binary/{id}", retrieve_document)
    app.router.add_post("", provide_document_bundle)
    app.router.add_post("/", provide_document_bundle)
    return app

