"""``/fhir/``: IHE MHD over FHIR R4 for professionals' software (an aiohttp sub-application).

Theory of operation
-------------------
* **Interactions.** ITI-67 Find Document References (``GET DocumentReference?patient.identifier=
  <INS system>|<INS>&status=current[&type=][&category=][&date=]``), a DocumentReference read,
  ITI-68 Retrieve Document (``GET Binary/<patient>-<document>``, the ``attachment.url``: the
  document's bytes), ITI-65 Provide Document Bundle (``POST`` to the base, see
  `dossier_bridge.fhir.provide`) and ``GET metadata``; the medical profile's resources are
  `dossier_bridge.fhir.profile_app`. JSON only.
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

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from dossier_bridge.access import ViewerRole
from dossier_bridge.errors import DocumentNotFound
from dossier_bridge.fhir.http import (
    DEPS,
    MAX_BUNDLE_BYTES,
    FhirDeps,
    FhirDirectory,
    Refused,
    authenticate,
    base_url,
    errors,
    read_json,
    respond,
)
from dossier_bridge.fhir.mapping import (
    CLASS_SYSTEM,
    INS_SYSTEMS,
    LABEL_SYSTEM,
    References,
    capability_statement,
    class_code_of,
    document_reference,
    searchset,
    split_token,
)
from dossier_bridge.fhir.profile_app import add_profile_routes
from dossier_bridge.fhir.provide import Provided, ProvideError
from dossier_bridge.store import DocumentInfo
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound

__all__ = ["FhirDirectory", "FhirDeps", "make_fhir_app", "MAX_BUNDLE_BYTES"]

log = logging.getLogger(__name__)
REFERENCES = web.AppKey("fhir_references", References)



def _ins_param(request: web.Request) -> tuple[str, str]:
    value = request.query.get("patient.identifier", "")
    system, ins = split_token(value)
    if system not in INS_SYSTEMS or not ins.strip():
        raise Refused(400, "required", "patient.identifier=<système INS>|<INS> est requis.")
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
            raise Refused(400, "invalid", "Paramètre date invalide.") from exc
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
    raise Refused(403, "forbidden", "Aucun document accessible : le patient n'a pas donné son "
                                     "consentement à votre équipe de soins ou à votre "
                                     "structure, ou son INS est inconnu.")


async def find_document_references(request: web.Request) -> web.Response:
    """ITI-67."""
    deps = request.app[DEPS]
    account = await authenticate(request)
    system, ins = _ins_param(request)
    statuses = ",".join(request.query.getall("status", ["current"])).split(",")
    patient = await _viewable_patient(request, account, ins)
    base = base_url(request, deps)
    refs = []
    if "current" in statuses:
        viewer = await deps.documents.consents.viewer(account, patient.id)
        docs = await deps.documents.list_for(viewer, patient.id)
        refs = [request.app[REFERENCES].json(d, (system, ins), base) for d in docs
                if _matches(d, request)]
    return respond(searchset(refs, base, f"{base}/DocumentReference?{request.query_string}"))


async def _open_patient(deps: FhirDeps, patient_id: int) -> AccountInfo:
    """The patient of a document id, if their space is open (a closed one shows nothing)."""
    patient = await deps.directory.get(patient_id)
    if not patient.is_patient or patient.status != "open":
        raise NotFound("no open patient space")
    return patient


def _ids(request: web.Request) -> tuple[int, int]:
    patient, _, doc = request.match_info["id"].partition("-")
    if not (patient.isdigit() and doc.isdigit()):
        raise Refused(403, "forbidden", "Document introuvable ou accès refusé.")
    return int(patient), int(doc)


async def read_document_reference(request: web.Request) -> web.Response:
    """``GET DocumentReference/<id>`` (metadata only: not an access-log read)."""
    deps = request.app[DEPS]
    account = await authenticate(request)
    patient_id, doc_id = _ids(request)
    try:
        patient = await _open_patient(deps, patient_id)
        info = await deps.documents.get(account, patient_id, doc_id)
    except (DocumentNotFound, NotFound) as exc:
        raise Refused(403, "forbidden", "Document introuvable ou accès refusé.") from exc
    ref = document_reference(info, (INS_SYSTEMS[0], patient.ins or ""), base_url(request, deps))
    return respond(ref.model_dump(mode="json", exclude_none=True))


async def retrieve_document(request: web.Request) -> web.Response:
    """ITI-68: the document's bytes (the read is in the patient's access log)."""
    deps = request.app[DEPS]
    account = await authenticate(request)
    patient_id, doc_id = _ids(request)
    try:
        await _open_patient(deps, patient_id)
        info, content = await deps.documents.read(account, patient_id, doc_id)
    except (DocumentNotFound, NotFound) as exc:
        raise Refused(403, "forbidden", "Document introuvable ou accès refusé.") from exc
    return web.Response(body=content, content_type=info.mime_type or "application/octet-stream",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Disposition": "attachment"})



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
    account = await authenticate(request)
    data = await read_json(request)
    try:
        patient_id, provided = await deps.provider.provide(account, data)
    except ProvideError as exc:
        log.info("fhir: submission refused status=%d", exc.status)
        raise Refused(exc.status, exc.code, exc.text) from exc
    bundle = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": _response_entries(data, provided, patient_id)}
    return respond(bundle)


async def metadata(request: web.Request) -> web.Response:
    """The CapabilityStatement (no authentication: it says nothing about patients)."""
    return respond(capability_statement(base_url(request, request.app[DEPS])))


def make_fhir_app(deps: FhirDeps) -> web.Application:
    """The sub-application, to mount with ``app.add_subapp("/fhir", make_fhir_app(deps))``."""
    app = web.Application(middlewares=[errors])
    app[DEPS] = deps
    app[REFERENCES] = References()
    app.router.add_get("/metadata", metadata)
    app.router.add_get("/DocumentReference", find_document_references)
    app.router.add_get("/DocumentReference/{id}", read_document_reference)
    app.router.add_get("/Binary/{id}", retrieve_document)
    add_profile_routes(app)
    app.router.add_post("", provide_document_bundle)
    app.router.add_post("/", provide_document_bundle)
    return app

