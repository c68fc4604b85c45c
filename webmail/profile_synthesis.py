"""The synthesis of the patient's medical profile ("Synthèse de mon profil médical"): downloaded,
filed in Documents under "Ma santé en résumé", or attached to a reply (see ``mail_views`` and
``api``: the reply then goes through ``Mailbox.reply`` like every reply).

``GET /profil/synthese.pdf`` and ``GET /api/profile/synthesis.pdf``: the PDF, named
``synthese-profil-medical-<date>.pdf``; ``POST /profil/synthese/enregistrer`` (the page's
button, then the Documents list of that label) and ``POST /api/profile/synthesis/file`` (201
``{"document_id": N}``): a new dated document at each call, added by the patient through the
same path as their own uploads (``PatientDocuments.add``).

The PDF is built by the pure ``mailserver.synthesis`` from ``GET /api/profile``'s JSON and the
identity the account holds: the name (given names, then the family name: the account keeps
one string, its last word is taken as the family name), the INS, and what the INS tells of the
birth (month and year: the account does not keep the day), the contact details and the
treating doctor.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, date, datetime

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.errors import KeyDestroyed, ValidationError
from mailserver.identifiers import ins_birth
from mailserver.lifecycle import paris_date
from mailserver.synthesis import TITLE, PatientHeader, build_synthesis
from webmail.deps import PatientDocuments, WebmailDeps
from webmail.mailbox import Upload
from webmail.profile import profile_json, profile_of
from webmail.web import DEPS, R_ATTACHMENT_CSP, current_account, render, see_other

__all__ = ["setup", "synthesis_upload", "wants_synthesis", "can_attach", "synthesis_filename",
           "SYNTHESIS_LABEL"]

SYNTHESIS_LABEL = "SYNTHESE"
SYNTHESIS_TYPE_CODE = "DOCPAT08"
"""document-types.csv: "Synthèse du profil médical" (class 90, label SYNTHESE)."""
"""The Documents label of a filed synthesis ("Ma santé en résumé")."""


def synthesis_filename(day: date) -> str:
    """``synthese-profil-medical-2026-11-30.pdf``."""
    return f"synthese-profil-medical-{day.isoformat()}.pdf"


def _title(day: date) -> str:
    return f"{TITLE} du {day.strftime('%d/%m/%Y')}"


async def _header(deps: WebmailDeps, account: AccountInfo, today: date) -> PatientHeader:
    try:
        name = await deps.directory.patient_name(account.id)
        contact = await deps.directory.contact(account.id)
    except KeyDestroyed:
        name, contact = "", {}
    given, _, family = name.strip().rpartition(" ")
    sex, month = ins_birth(account.ins or "", today.year)
    doctor = None
    if deps.patient_documents is not None:
        found = await deps.patient_documents.treating_doctor(account)
        doctor = found.name if found is not None else None
    return PatientHeader(
        given_names=given, family_name=family, birth_date=None, birth_month=month,
        ins=account.ins or "", sex=sex, phone=contact.get("phone") or None,
        email=contact.get("email") or None, secure_address=account.address,
        treating_doctor=doctor)


async def synthesis_pdf(request: web.Request, account: AccountInfo) -> tuple[bytes, date]:
    """The patient's synthesis as of today (Paris) and that day. Each copy has its own PDF
    identifier, so that two filings the same day are two documents (the store merges equal
    bytes)."""
    deps = request.app[DEPS]
    profile = await profile_json(profile_of(request), account)
    today = paris_date(datetime.now(UTC))
    header = await _header(deps, account, today)
    # About 10-60 ms for a large profile: off the event loop.
    pdf = await asyncio.to_thread(build_synthesis, profile, header, today,
                                  instance=secrets.token_hex(16))
    return pdf, today


async def synthesis_upload(request: web.Request, account: AccountInfo) -> Upload:
    """The synthesis as a reply's attachment."""
    pdf, today = await synthesis_pdf(request, account)
    return Upload(synthesis_filename(today), "application/pdf", pdf)


def wants_synthesis(value: object) -> bool:
    """A reply form's or JSON body's ``attach_synthesis`` (checkbox ``1``/``on``, JSON true)."""
    return value is True or (isinstance(value, str) and value.lower() in ("1", "on", "true"))


def can_attach(request: web.Request) -> bool:
    """Whether the reply form offers the synthesis (the server runs with the profile)."""
    return request.app[DEPS].profile is not None


def _documents(request: web.Request) -> PatientDocuments:
    docs = request.app[DEPS].patient_documents
    if docs is None:
        raise web.HTTPNotFound()
    return docs


async def file_synthesis(request: web.Request, account: AccountInfo) -> int:
    """File a new synthesis in the patient's Documents; its id."""
    docs = _documents(request)
    pdf, today = await synthesis_pdf(request, account)
    return await docs.add(account, pdf, filename=synthesis_filename(today),
                          content_type="application/pdf", title=_title(today),
                          created=datetime.now(UTC), label=SYNTHESIS_LABEL,
                          type_code=SYNTHESIS_TYPE_CODE)


async def download(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    pdf, today = await synthesis_pdf(request, account)
    # Our own PDF, as a download (ASCII file name), sandboxed like every attachment.
    request[R_ATTACHMENT_CSP] = "default-src 'none'; sandbox"
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{synthesis_filename(today)}"'})


_NOT_FILED = ("La synthèse n'a pas pu être enregistrée dans vos documents. Réessayez dans un "
              "instant.")


async def file_post(request: web.Request) -> web.StreamResponse:
    """The page's button: file it, then show it in its label's list."""
    account = current_account(request)
    try:
        await file_synthesis(request, account)
    except ValidationError:
        return render(request, "error.html", {"status": 400, "message": _NOT_FILED},
                      status=400)
    return see_other(f"/documents?label={SYNTHESIS_LABEL}&ok=synthese#confirmation")


async def api_file(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    try:
        document_id = await file_synthesis(request, account)
    except ValidationError:
        return web.json_response({"error": _NOT_FILED}, status=400)
    return web.json_response({"document_id": document_id}, status=201)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/profil/synthese.pdf", download)
    r.add_post("/profil/synthese/enregistrer", file_post)
    r.add_get("/api/profile/synthesis.pdf", download)
    r.add_post("/api/profile/synthesis/file", api_file)
