"""``/fhir/<Type>``: the patient's medical profile for professionals' software (FHIR R4).

Theory of operation
-------------------
* **Interactions.** For each type of `profile_resources.RESOURCE_RUBRICS` (Condition,
  AllergyIntolerance, MedicationStatement, Immunization, Procedure, FamilyMemberHistory,
  Observation, RelatedPerson, Consent): search (``GET <Type>?patient.identifier=<INS system>|
  <INS>``, or ``subject.identifier``, or ``patient``/``subject`` = ``Patient/<id>`` with the id
  found in the resources' ids; optional ``code``), read (``GET <Type>/<patient>-<entry>``) and,
  except Consent (the patient's own wishes), create (``POST <Type>``: 201, ``Location``).
* **Authentication** as for the documents (`dossier_bridge.fhir.http.authenticate`).
* **Access.** `access.may_use_profile`: the treating doctor; a professional of a care team or
  structure the patient consented for, whose profession may read "Ma santé en résumé"; a
  consented APP or ORG mailbox. Only open accounts: a pending, opposed or closed account is
  answered like an unknown INS (403, nothing leaks). A refused search, read or create is a 403
  OperationOutcome.
* **Author.** An entry created here keeps its author (`ProfileStore.add`): ``professional`` and
  the directory's name ("Dr Claire Martin"), or ``application`` for an APP mailbox.
* **Access log.** Every search and read appends ``profile-read`` (one per request, with the
  resource type and the count), every create ``profile-add`` (in the entry's transaction), with
  who, their profession and structure, shown in the patient's access history.
* **Errors.** A resource that is not valid FHIR, or an entry the profile's rules refuse, is a
  400 OperationOutcome with the French messages (one issue per field).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from fhir.resources.R4B.operationoutcome import OperationOutcome

from dossier_bridge.access import Viewer, ViewerRole, may_use_profile
from dossier_bridge.fhir.http import DEPS, Refused, authenticate, base_url, read_json, respond
from dossier_bridge.fhir.mapping import INS_SYSTEMS, searchset, split_token
from dossier_bridge.fhir.profile_entries import ResourceInvalid, patient_of, raw_fields
from dossier_bridge.fhir.profile_resources import (
    CREATABLE,
    RESOURCE_RUBRICS,
    PatientIdentity,
    resource_type_of,
    to_resource,
)
from dossier_bridge.profile_store import PROFILE_READ, ProfileStore
from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound
from mailserver.lifecycle import paris_date
from mailserver.profile import EntryInvalid, rubric

__all__ = ["add_profile_routes"]

DENIED = "Profil médical inaccessible : le patient n'a pas donné son consentement à votre " \
         "équipe de soins ou à votre structure, votre profession n'y a pas accès, ou son INS " \
         "est inconnu."
NOT_FOUND = "Entrée du profil médical introuvable ou accès refusé."
NEEDS_PATIENT = "patient.identifier=<système INS>|<INS> est requis."


def _store(request: web.Request) -> ProfileStore:
    store = request.app[DEPS].profile
    if store is None:
        raise Refused(404, "not-supported", "Le profil médical n'est pas servi ici.")
    return store


def _today() -> str:
    return paris_date(datetime.now(UTC)).isoformat()


async def _by_id(request: web.Request, value: str) -> AccountInfo | None:
    if not value.isdigit():
        return None
    try:
        return await request.app[DEPS].directory.get(int(value))
    except NotFound:
        return None


async def _searched_patient(request: web.Request) -> tuple[AccountInfo | None, str]:
    """The patient a search names, and the INS system to answer with."""
    q = request.query
    for name in ("patient.identifier", "subject.identifier"):
        if name in q:
            system, ins = split_token(q[name])
            if system not in INS_SYSTEMS or not ins.strip():
                raise Refused(400, "required", NEEDS_PATIENT)
            found = await request.app[DEPS].directory.by_ins(ins.strip().upper())
            return found, str(system)
    for name in ("patient", "subject"):
        if name in q:
            return await _by_id(request, q[name].removeprefix("Patient/")), INS_SYSTEMS[0]
    raise Refused(400, "required", NEEDS_PATIENT)


async def _allowed(request: web.Request, account: AccountInfo, patient: AccountInfo | None
                   ) -> tuple[AccountInfo, Viewer]:
    """The patient and the viewer, when ``account`` may use the patient's profile (else 403)."""
    if patient is not None and patient.is_patient and patient.status == "open":
        viewer = await request.app[DEPS].documents.consents.viewer(account, patient.id)
        if may_use_profile(viewer, account.bal_type):
            return patient, viewer
    raise Refused(403, "forbidden", DENIED)


def _titles(rtype: str) -> str:
    return ", ".join(r.title for slug in RESOURCE_RUBRICS[rtype] if (r := rubric(slug)))


def _detail(account: AccountInfo, viewer: Viewer, rtype: str, **extra: Any) -> dict[str, Any]:
    """The access-log detail (who, as the documents' entries record it; what)."""
    return {"kind": "pro", "rpps": account.rpps, "name": account.name,
            "profession": account.profession, "address": account.address,
            "bal_type": account.bal_type, "structure_id": account.structure_id,
            "treating_doctor": viewer.role is ViewerRole.TREATING_DOCTOR,
            "title": f"Profil médical : {_titles(rtype)}", "resource": rtype, **extra}


def _identity(patient: AccountInfo, system: str) -> PatientIdentity:
    return PatientIdentity(patient.ins or "", system, key=str(patient.id))


def _code_match(resource: dict[str, Any], values: list[str]) -> bool:
    """FHIR token search on ``code``: every parameter (AND) has one value (OR) that matches a
    coding (``system|code``, or ``code`` in any system)."""
    codings = [(c.get("system"), c.get("code")) for c in
               (resource.get("code") or {}).get("coding", [])]
    for value in values:
        wanted = [split_token(v) for v in value.split(",")]
        if not any(code == c and system in (None, s) for system, code in wanted
                   for s, c in codings):
            return False
    return True


async def search(request: web.Request) -> web.Response:
    """``GET <Type>?patient.identifier=...``: a searchset Bundle (logged)."""
    rtype = request.match_info["type"]
    store = _store(request)
    account = await authenticate(request)
    found, system = await _searched_patient(request)
    patient, viewer = await _allowed(request, account, found)
    who, today = _identity(patient, system), _today()
    resources = [to_resource(e.rubric, e.as_json(), who, today=today)
                 for slug in RESOURCE_RUBRICS[rtype] for e in await store.entries(patient.id, slug)
                 if resource_type_of(slug, e.data) == rtype]
    codes = request.query.getall("code", [])
    if codes:
        resources = [r for r in resources if _code_match(r, codes)]
    await store.log(patient.id, PROFILE_READ, account.id,
                    _detail(account, viewer, rtype, count=len(resources)))
    base = base_url(request, request.app[DEPS])
    return respond(searchset(resources, base, f"{base}/{rtype}?{request.query_string}"))


async def read(request: web.Request) -> web.Response:
    """``GET <Type>/<patient>-<entry>`` (logged)."""
    rtype = request.match_info["type"]
    store = _store(request)
    account = await authenticate(request)
    patient_part, _, entry_part = request.match_info["id"].partition("-")
    patient, viewer = await _allowed(request, account, await _by_id(request, patient_part))
    if not entry_part.isdigit():
        raise Refused(403, "forbidden", NOT_FOUND)
    for slug in RESOURCE_RUBRICS[rtype]:
        try:
            entry = await store.get(patient.id, slug, int(entry_part))
        except NotFound:
            continue
        if resource_type_of(slug, entry.data) == rtype:
            break
    else:
        raise Refused(403, "forbidden", NOT_FOUND)
    await store.log(patient.id, PROFILE_READ, account.id,
                    _detail(account, viewer, rtype, count=1, entry=entry.id))
    return respond(to_resource(slug, entry.as_json(), _identity(patient, INS_SYSTEMS[0]),
                               today=_today()))


def _invalid(messages: list[str]) -> web.Response:
    data = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": m} for m in messages]}
    OperationOutcome.model_validate(data)
    return respond(data, 400)


async def create(request: web.Request) -> web.Response:
    """``POST <Type>``: one profile entry added by the professional (logged)."""
    rtype = request.match_info["type"]
    store = _store(request)
    account = await authenticate(request)
    data = await read_json(request)
    if not isinstance(data, dict) or data.get("resourceType") != rtype:
        raise Refused(400, "invalid", f"Le corps de la requête doit être une ressource {rtype}.")
    ident = patient_of(data)
    if ident is None or ident[0] not in INS_SYSTEMS:
        raise Refused(400, "required", "La ressource doit désigner le patient par son INS "
                                       "(identifier avec le système INS).")
    found = await request.app[DEPS].directory.by_ins(ident[1])
    patient, viewer = await _allowed(request, account, found)
    try:
        slug, raw = raw_fields(data)
        entry = await store.add(account, patient.id, slug, raw,
                                log=_detail(account, viewer, rtype))
    except ResourceInvalid as exc:
        return _invalid([exc.text])
    except EntryInvalid as exc:
        return _invalid(exc.messages())
    resource = to_resource(slug, entry.as_json(), _identity(patient, ident[0]), today=_today())
    location = f"{base_url(request, request.app[DEPS])}/{rtype}/{resource['id']}"
    return respond(resource, 201, Location=location)


def add_profile_routes(app: web.Application) -> None:
    """Register the profile's routes on the ``/fhir`` sub-application."""
    types, creatable = "|".join(RESOURCE_RUBRICS), "|".join(CREATABLE)
    app.router.add_get(f"/{{type:{types}}}", search)
    app.router.add_get(f"/{{type:{types}}}/{{id}}", read)
    app.router.add_post(f"/{{type:{creatable}}}", create)
