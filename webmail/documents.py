"""The patient's Documents space, shared by the HTML views and ``/api/``: parameters, the rules
explained in French, and the document responses. The documents themselves come from the
``PatientDocuments`` seam (the dossier bridge, wired by the root)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from aiohttp import web

from mailserver.directory.service import AccountInfo
from webmail.deps import DocumentRow, PatientDocuments
from webmail.params import page_param
from webmail.web import DEPS

__all__ = ["LABELS", "ACTIONS", "UPLOAD_REFUSALS", "NOT_MINE", "NOT_RELABEL", "Filters",
           "documents_of", "filters_of", "parse_day", "content_response", "refusal_for",
           "INLINE_TYPES"]

LABELS: dict[str, str] = {
    "RADIO_SC": "Radio, écho, scanner, IRM",
    "SYNTHESE": "Ma santé en résumé",
    "ORD_SOIN": "Ordonnances et soins",
    "CPT_REND": "Comptes rendus",
    "BIOLOGIE": "Résultats de biologie",
    "DEPISTAG": "Prévention et dépistage",
    "CERT_MED": "Certificats médicaux",
    "AUTR_DOC": "Autres documents",
}
"""The 8 labels, exactly as in labels.csv, in its order."""

ACTIONS: dict[str, str] = {
    "read": "Consultation", "file": "Ajout", "upload": "Ajout", "relabel": "Reclassement",
    "mask": "Masquage", "unmask": "Démasquage", "delete": "Suppression",
    "edit": "Modification", "consent_grant": "Autorisation donnée",
    "consent_revoke": "Autorisation retirée", "treating_doctor": "Médecin traitant déclaré",
    "profile-read": "Consultation du profil médical", "profile-add": "Ajout au profil médical",
}
"""Access-log actions as the patient reads them."""

UPLOAD_REFUSALS: dict[str, str] = {
    "empty": "Choisissez un fichier à ajouter.",
    "too_large": "Ce fichier est trop volumineux.",
    "type": "Seuls les fichiers PDF, JPEG et PNG peuvent être ajoutés.",
    "label": "Choisissez une rubrique dans la liste.",
}
UPLOAD_REFUSED = "Ce fichier ne peut pas être ajouté : son contenu ne correspond pas à son type " \
                 "ou il est endommagé."
NOT_MINE = "Vous ne pouvez modifier ou supprimer que les documents que vous avez ajoutés."
NOT_RELABEL = "Vous ne pouvez changer la rubrique que des documents que vous avez ajoutés ou " \
              "de ceux marqués « à vérifier »."

INLINE_TYPES = ("application/pdf", "image/png", "image/jpeg")


def documents_of(request: web.Request) -> PatientDocuments:
    """The seam, or 404 when the server runs without the document space."""
    docs = request.app[DEPS].patient_documents
    if docs is None:
        raise web.HTTPNotFound()
    return docs


def parse_day(value: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as a UTC instant (start of that day, or its end with ``end``)."""
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    at = datetime.combine(day, time(0, 0), tzinfo=UTC)
    return at + timedelta(days=1, microseconds=-1) if end else at


@dataclass(frozen=True)
class Filters:
    label: str
    author: str
    since: str
    until: str
    added_by: str
    page: int

    def query(self, **changes: Any) -> str:
        """The query string of these filters (with ``changes``)."""
        values = {"label": self.label, "author": self.author, "from": self.since,
                  "to": self.until, "added_by": self.added_by, "page": str(self.page)}
        values.update({k: str(v) for k, v in changes.items()})
        return urllib.parse.urlencode({k: v for k, v in values.items()
                                       if v and not (k == "page" and v == "1")})

    async def fetch(self, docs: PatientDocuments, account: AccountInfo) -> Any:
        return await docs.page(account, label=self.label or None, author=self.author,
                               since=parse_day(self.since), until=parse_day(self.until,
                                                                              end=True),
                               added_by=self.added_by, page=self.page)


def filters_of(request: web.Request) -> Filters:
    q = request.query
    label = q.get("label", "")
    added_by = q.get("added_by", "")
    since, until = q.get("from", "")[:10], q.get("to", "")[:10]
    return Filters(label if label in LABELS else "", q.get("author", "")[:100].strip(),
                   since if parse_day(since) else "", until if parse_day(until) else "",
                   added_by if added_by in ("me", "pro") else "", page_param(request))


def refusal_for(reason: str) -> str:
    """French text of an upload refusal."""
    return UPLOAD_REFUSALS.get(reason, UPLOAD_REFUSED)


def content_response(doc: DocumentRow, data: bytes, inline: bool) -> web.Response:
    """A document's bytes: a download, or shown inline (images in the page, a PDF in the
    browser's viewer in its own tab). No script, never framed, no sniffing."""
    filename = doc.filename or "document"
    quoted = urllib.parse.quote(filename, safe="")
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                         for c in filename)
    inline = inline and doc.content_type in INLINE_TYPES
    response = web.Response(body=data, content_type=doc.content_type if inline
                            else "application/octet-stream", headers={
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; "
                               f"filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"})
    if inline and doc.content_type == "application/pdf":
        # Opened in its own tab, in the browser's PDF viewer (a CSP ``sandbox`` or a sandboxed
        # frame makes Chromium refuse to show it); never framed, no script of ours.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
            "frame-ancestors 'none'")
    else:
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
