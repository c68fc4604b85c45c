"""HTML views of the patient's Documents space: the list with its filters, a document, adding
one, changing or deleting one's own, masking, "Qui a consulté mes documents ?" and consents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from mailserver.directory.service import AccountInfo
from mailserver.errors import MssanteError, NotFound, ValidationError
from webmail.deps import DocumentRow, PatientDocuments
from webmail.documents import (
    ACTIONS,
    LABELS,
    NOT_MINE,
    NOT_RELABEL,
    content_response,
    documents_of,
    filters_of,
    parse_day,
    refusal_for,
)
from webmail.params import path_id
from webmail.web import DEPS, R_ATTACHMENT_CSP, current_account, render, see_other

__all__ = ["setup", "add_document", "change_document"]

NOTICES = {
    "ajoute": "Votre document a été ajouté.",
    "synthese": "La synthèse de votre profil médical a été enregistrée dans « Ma santé en "
                "résumé ».",
    "modifie": "Le document a été modifié.",
    "masque": "Le document est masqué : les professionnels ne le voient plus, sauf votre "
              "médecin traitant.",
    "demasque": "Le document est de nouveau visible par les professionnels autorisés.",
    "supprime": "Le document a été supprimé.",
    "retire": "L'autorisation a été retirée.",
    "medecin": "Votre médecin traitant a été enregistré.",
}


def _notice(request: web.Request) -> str:
    return NOTICES.get(request.query.get("ok", ""), "")


async def _doc(docs: PatientDocuments, account: AccountInfo, did: int) -> DocumentRow:
    try:
        return await docs.get(account, did)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc


async def documents_list(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    docs = documents_of(request)
    filters = filters_of(request)
    page = await filters.fetch(docs, account)
    return render(request, "documents.html", {
        "page": page, "f": filters, "labels": LABELS, "notice": _notice(request),
        "filtered": any((filters.label, filters.author, filters.since, filters.until,
                         filters.added_by))})


async def document_view(request: web.Request, errors: list[str] | None = None,
                        status: int = 200) -> web.Response:
    account = current_account(request)
    docs = documents_of(request)
    did = path_id(request, "did")
    try:
        doc, data = await docs.content(account, did)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    readable = docs.readable(data) if doc.content_type in ("text/xml", "application/xml") \
        or data.lstrip()[:5] == b"<?xml" else None
    return render(request, "document.html", {
        "doc": doc, "readable": readable, "labels": LABELS, "errors": errors or [],
        "notice": _notice(request)}, status=status)


async def document_content(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    try:
        doc, data = await documents_of(request).content(account, path_id(request, "did"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    response = content_response(doc, data, request.query.get("inline") == "1")
    request[R_ATTACHMENT_CSP] = response.headers["Content-Security-Policy"]
    return response


def _add_form(form: MultiDictProxy[Any] | None = None) -> dict[str, str]:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    if form is None:
        return {"titre": "", "date": today, "rubrique": "AUTR_DOC"}
    return {k: str(form.get(k, "")) for k in ("titre", "date", "rubrique")}


async def add_get(request: web.Request) -> web.StreamResponse:
    current_account(request)
    documents_of(request)
    return render(request, "document_add.html", {"labels": LABELS, "errors": [],
                                                 "form": _add_form(), "max_size":
                                                 request.app[DEPS].max_document_upload})


async def add_document(request: web.Request, account: AccountInfo, *, title: str, day: str,
                       label: str, upload: web.FileField | None) -> tuple[int | None, list[str]]:
    """Add a document from form fields; (new id, []) or (None, French errors)."""
    errors = []
    title = title.strip()[:200]
    created = parse_day(day)
    if not title:
        errors.append("Indiquez un titre.")
    if created is None:
        errors.append("Indiquez la date du document (jour/mois/année).")
    if label not in LABELS:
        errors.append(refusal_for("label"))
    data = upload.file.read(request.app[DEPS].max_document_upload + 1) if upload else b""
    if not data:
        errors.append(refusal_for("empty"))
    elif len(data) > request.app[DEPS].max_document_upload:
        errors.append(refusal_for("too_large"))
    if errors or created is None or upload is None:
        return None, errors
    try:
        did = await documents_of(request).add(
            account, data, filename=upload.filename or "document",
            content_type=upload.content_type, title=title, created=created, label=label)
    except ValidationError as exc:
        return None, [refusal_for(str(getattr(exc, "reason", "")))]
    return did, []


async def add_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await request.post()
    upload = form.get("fichier")
    did, errors = await add_document(
        request, account, title=str(form.get("titre", "")), day=str(form.get("date", "")),
        label=str(form.get("rubrique", "")),
        upload=upload if isinstance(upload, web.FileField) else None)
    if did is None:
        return render(request, "document_add.html", {
            "labels": LABELS, "errors": errors, "form": _add_form(form),
            "max_size": request.app[DEPS].max_document_upload}, status=400)
    return see_other(f"/documents/{did}?ok=ajoute#confirmation")


async def change_document(docs: PatientDocuments, account: AccountInfo, doc: DocumentRow, *,
                          title: str | None, day: str | None, label: str | None,
                          masked: bool | None) -> tuple[int, str]:
    """Apply the allowed changes; (200, "") or (status, French reason). Nothing changes when
    one requested change is not allowed."""
    if (title is not None and title.strip() != doc.title) or \
            (day is not None and day != doc.date.strftime("%Y-%m-%d")):
        if not doc.mine:
            return 403, NOT_MINE
    if label is not None and label != doc.label:
        if label not in LABELS:
            return 400, refusal_for("label")
        if not (doc.mine or doc.flagged):
            return 403, NOT_RELABEL
    created = None
    if day is not None and day != doc.date.strftime("%Y-%m-%d"):
        created = parse_day(day)
        if created is None:
            return 400, "Indiquez la date du document (jour/mois/année)."
    if title is not None and not title.strip():
        return 400, "Indiquez un titre."
    new_title = title.strip()[:200] if title is not None and title.strip() != doc.title \
        else None
    try:
        if new_title is not None or created is not None or (label is not None
                                                              and label != doc.label):
            await docs.edit(account, doc.id, title=new_title, created=created,
                            label=label if label is not None and label != doc.label else None)
        if masked is not None and masked != doc.masked:
            await docs.set_masked(account, doc.id, masked)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    except MssanteError:
        return 403, NOT_MINE
    return 200, ""


async def edit_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    docs = documents_of(request)
    doc = await _doc(docs, account, path_id(request, "did"))
    form = await request.post()

    def field(name: str) -> str | None:
        return str(form[name]) if name in form else None

    status, reason = await change_document(docs, account, doc, title=field("titre"),
                                           day=field("date"), label=field("rubrique"),
                                           masked=None)
    if status != 200:
        return await document_view(request, [reason], status)
    return see_other(f"/documents/{doc.id}?ok=modifie#confirmation")


async def mask_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    docs = documents_of(request)
    doc = await _doc(docs, account, path_id(request, "did"))
    form = await request.post()
    masked = form.get("masquer") == "1"
    await change_document(docs, account, doc, title=None, day=None, label=None,
                          masked=masked)
    return see_other(f"/documents/{doc.id}?ok={'masque' if masked else 'demasque'}"
                     "#confirmation")


async def delete_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    docs = documents_of(request)
    doc = await _doc(docs, account, path_id(request, "did"))
    if not doc.mine:
        return await document_view(request, [NOT_MINE], 403)
    try:
        await docs.delete(account, doc.id)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    return see_other("/documents?ok=supprime#confirmation")


async def access_log(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    log = await documents_of(request).access_log(account)
    return render(request, "access_log.html", {"log": log, "actions": ACTIONS})


async def consents(request: web.Request, errors: list[str] | None = None,
                   status: int = 200) -> web.Response:
    account = current_account(request)
    docs = documents_of(request)
    return render(request, "consents.html", {
        "consents": await docs.consents(account), "doctor": await docs.treating_doctor(account),
        "errors": errors or [], "notice": _notice(request)}, status=status)


async def revoke_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    if not await documents_of(request).revoke_consent(account, path_id(request, "consent")):
        raise web.HTTPNotFound()
    return see_other("/consentements?ok=retire#confirmation")


async def doctor_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    form = await request.post()
    address = str(form.get("adresse", ""))[:254]
    if not await documents_of(request).set_treating_doctor(account, address):
        return await consents(request, ["Aucun médecin n'a cette adresse de messagerie "
                                        "sécurisée sur ce service."], 400)
    return see_other("/consentements?ok=medecin#confirmation")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/documents", documents_list)
    r.add_get("/documents/ajouter", add_get)
    r.add_post("/documents/ajouter", add_post)
    r.add_get("/documents/historique", access_log)
    r.add_get("/documents/{did}", document_view)
    r.add_get("/documents/{did}/contenu", document_content)
    r.add_post("/documents/{did}/modifier", edit_post)
    r.add_post("/documents/{did}/masquer", mask_post)
    r.add_post("/documents/{did}/supprimer", delete_post)
    r.add_get("/consentements", consents)
    r.add_post("/consentements/medecin-traitant", doctor_post)
    r.add_post("/consentements/{consent}/retirer", revoke_post)
