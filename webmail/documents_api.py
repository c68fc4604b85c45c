"""``/api/`` for the patient's Documents space: the same rules as the HTML views
(`webmail.documents_views`), JSON in and out, errors as ``{"error": "<French reason>"}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mailserver.errors import NotFound
from webmail.deps import DocumentRow
from webmail.documents import (
    ACTIONS,
    LABELS,
    NOT_MINE,
    content_response,
    documents_of,
    filters_of,
)
from webmail.documents_views import add_document, change_document
from webmail.params import path_id
from webmail.web import R_ATTACHMENT_CSP, current_account, json_body

__all__ = ["setup"]


def _error(text: str, status: int) -> web.Response:
    return web.json_response({"error": text, "details": [text]}, status=status)


def _doc_json(d: DocumentRow) -> dict[str, Any]:
    return {"id": d.id, "title": d.title, "label": d.label_fr, "label_code": d.label,
            "date": d.date.isoformat(), "author": d.author, "added_by": d.added_by,
            "masked": d.masked, "flagged": d.flagged, "content_type": d.content_type,
            "size": d.size}


async def _get(request: web.Request) -> DocumentRow:
    try:
        return await documents_of(request).get(current_account(request),
                                               path_id(request, "did"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc


async def api_documents(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    filters = filters_of(request)
    page = await filters.fetch(documents_of(request), account)
    return web.json_response({
        "documents": [_doc_json(d) for d in page.documents], "page": page.page,
        "pages": page.pages, "total": page.total,
        "labels": [{"label": name, "code": code, "count": n} for code, name, n in page.counts]})


async def api_document(request: web.Request) -> web.StreamResponse:
    return web.json_response(_doc_json(await _get(request)))


async def api_content(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    try:
        doc, data = await documents_of(request).content(account, path_id(request, "did"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    response = content_response(doc, data, False)
    request[R_ATTACHMENT_CSP] = response.headers["Content-Security-Policy"]
    return response


async def api_add(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType()
    form = await request.post()
    upload = form.get("file")
    did, errors = await add_document(
        request, account, title=str(form.get("title", "")), day=str(form.get("date", ""))[:10],
        label=str(form.get("label", "")),
        upload=upload if isinstance(upload, web.FileField) else None)
    if did is None:
        return _error(errors[0], 400) if len(errors) == 1 else web.json_response(
            {"error": errors[0], "details": errors}, status=400)
    doc = await documents_of(request).get(account, did)
    return web.json_response(_doc_json(doc), status=201)


LABEL_CODES = {name: code for code, name in LABELS.items()}
"""A label given by its display name (as ``GET`` shows it) -> its code."""


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise web.HTTPBadRequest()
    return value


async def api_patch(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    doc = await _get(request)
    data = await json_body(request)
    masked = data.get("masked")
    if masked is not None and not isinstance(masked, bool):
        raise web.HTTPBadRequest()
    label = _opt_str(data, "label")
    if label is not None:
        label = LABEL_CODES.get(label, label)  # a display name or a code
    day = _opt_str(data, "date")
    status, reason = await change_document(
        documents_of(request), account, doc, title=_opt_str(data, "title"),
        day=day[:10] if day is not None else None, label=label, masked=masked)
    if status != 200:
        return _error(reason, status)
    return web.json_response(_doc_json(await _get(request)))


async def api_delete(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    doc = await _get(request)
    if not doc.mine:
        return _error(NOT_MINE, 403)
    try:
        await documents_of(request).delete(account, doc.id)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    return web.json_response({"deleted": True})


async def api_access_log(request: web.Request) -> web.StreamResponse:
    log = await documents_of(request).access_log(current_account(request))
    return web.json_response({"entries": [
        {"at": e.at.isoformat(), "who": e.who, "profession": e.profession,
         "structure": e.structure, "action": e.action, "action_fr": ACTIONS.get(e.action,
                                                                                e.action),
         "document_id": e.document_id, "document_title": e.document_title}
        for e in log.entries], "intact": log.intact})


async def api_consents(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    docs = documents_of(request)
    doctor = await docs.treating_doctor(account)
    return web.json_response({
        "consents": [{"id": c.id, "kind": c.kind, "name": c.name,
                      "since": c.since.isoformat()} for c in await docs.consents(account)],
        "treating_doctor": {"name": doctor.name, "address": doctor.address,
                            "since": doctor.since.isoformat()} if doctor else None})


async def api_revoke(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    if not await documents_of(request).revoke_consent(account, path_id(request, "consent")):
        raise web.HTTPNotFound()
    return web.json_response({"revoked": True})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/documents", api_documents)
    r.add_post("/api/documents", api_add)
    r.add_get("/api/documents/{did}", api_document)
    r.add_get("/api/documents/{did}/content", api_content)
    r.add_patch("/api/documents/{did}", api_patch)
    r.add_delete("/api/documents/{did}", api_delete)
    r.add_get("/api/access-log", api_access_log)
    r.add_get("/api/consents", api_consents)
    r.add_delete("/api/consents/{consent}", api_revoke)
