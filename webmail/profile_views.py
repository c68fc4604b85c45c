"""HTML pages of the patient's medical profile ("Profil médical"): the 9 rubrics, a page per
rubric with its entries and its add form, editing and deleting an entry. No JavaScript: a
rubric with several kinds of entries (Entourage et volontés, Mesures) first offers the kinds as
links (``?type=<kind>``), then that kind's form. Refused input shows the page again with the
typed values, a summary of the problems at the top and each message next to its field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from mailserver.directory.service import AccountInfo
from mailserver.errors import NotFound
from mailserver.lifecycle import paris_date
from mailserver.profile import RUBRICS, EntryInvalid, Rubric, details, headline, latest_imc
from webmail.deps import ProfileEntryRow
from webmail.params import path_id
from webmail.profile import SLUG_PATTERN, entry_json, form_fields, profile_of, rubric_of
from webmail.profile_charts import charts_view
from webmail.web import DEPS, current_account, render, see_other

__all__ = ["setup"]

NOTICES = {
    "ajoute": "L'information a été ajoutée à votre profil médical.",
    "modifie": "L'information a été modifiée.",
    "supprime": "L'information a été supprimée de votre profil médical.",
}
_MAX_DOCUMENT_PAGES = 10


def _today() -> Any:
    return paris_date(datetime.now(UTC))


def _kind(r: Rubric, value: object) -> str | None:
    """A kind the patient may enter in ``r`` (None otherwise, or for a rubric without
    kinds)."""
    v = r.variant(value)
    return v.kind if v is not None and v.entered else None


def _entry_view(r: Rubric, row: ProfileEntryRow) -> dict[str, Any]:
    return {"id": row.id, "headline": headline(r, row.data), "details": details(r, row.data),
            "by": "vous" if row.added_by_kind == "patient" else row.added_by,
            "added_at": row.added_at}


async def _documents(request: web.Request, account: AccountInfo) -> list[tuple[str, str]]:
    """(id, title) of the patient's documents, for a directive's document."""
    docs = request.app[DEPS].patient_documents
    if docs is None:
        return []
    out: list[tuple[str, str]] = []
    page, pages = 1, 1
    while page <= min(pages, _MAX_DOCUMENT_PAGES):
        listed = await docs.page(account, page=page)
        out.extend((str(d.id), f"{d.title} ({d.label_fr})") for d in listed.documents)
        page, pages = page + 1, listed.pages
    return out


async def overview(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    rows = await profile_of(request).entries(account)
    by_rubric: dict[str, list[ProfileEntryRow]] = {r.slug: [] for r in RUBRICS}
    for row in rows:
        by_rubric.setdefault(row.rubric, []).append(row)
    return render(request, "profile.html", {"rubrics": [
        {"slug": r.slug, "title": r.title, "intro": r.intro, "count": len(by_rubric[r.slug]),
         "latest": [headline(r, e.data) for e in by_rubric[r.slug][:3]]} for r in RUBRICS]})


async def rubric_page(request: web.Request, *, kind: str | None = None,
                      values: Mapping[str, object] | None = None,
                      field_errors: Mapping[str, str] | None = None,
                      errors: list[str] | None = None, status: int = 200) -> web.Response:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    rows = await profile.entries(account, r.slug)
    kind = kind or _kind(r, request.query.get("type"))
    show_form = not r.variants or kind is not None
    fields = form_fields(r, kind, values or {}, field_errors or {}, _today(),
                         await _documents(request, account) if show_form else ()) \
        if show_form else []
    variant = r.variant(kind)
    measures = [entry_json(row) for row in rows] if r.slug == "mesures" else []
    return render(request, "profile_rubric.html", {
        "r": r, "entries": [_entry_view(r, row) for row in rows], "fields": fields,
        "kind": kind, "kind_label": variant.label if variant else "",
        "kinds": [(v.kind, v.label) for v in r.variants if v.entered],
        "imc": latest_imc(measures) if r.slug == "mesures" else None,
        "charts": charts_view(request, measures) if measures else None,
        "errors": errors or [], "notice": NOTICES.get(request.query.get("ok", ""), "")},
        status=status)


def _posted(r: Rubric, kind: str | None, form: Mapping[str, Any]) -> dict[str, str]:
    raw = {f.name: str(form.get(f.name, "")) for f in r.fields_for(kind)}
    return {"kind": kind or "", **raw} if r.variants else raw


async def add_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    form = await request.post()
    kind = _kind(r, form.get("kind")) if r.variants else None
    raw = _posted(r, kind, form)
    try:
        await profile.add(account, r.slug, raw)
    except EntryInvalid as exc:
        return await rubric_page(request, kind=kind, values=raw, field_errors=exc.errors,
                                 errors=exc.messages(), status=400)
    return see_other(f"/profil/{r.slug}?ok=ajoute#confirmation")


async def _entry(request: web.Request, r: Rubric) -> ProfileEntryRow:
    try:
        return await profile_of(request).get(current_account(request), r.slug,
                                             path_id(request, "eid"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc


async def edit_page(request: web.Request, *, values: Mapping[str, object] | None = None,
                    field_errors: Mapping[str, str] | None = None,
                    errors: list[str] | None = None, status: int = 200) -> web.Response:
    account = current_account(request)
    r = rubric_of(request)
    row = await _entry(request, r)
    kind = row.data.get("kind") if r.variants else None
    variant = r.variant(kind)
    fields = form_fields(r, kind, row.data if values is None else values, field_errors or {},
                         _today(), await _documents(request, account))
    return render(request, "profile_edit.html", {
        "r": r, "entry": _entry_view(r, row), "fields": fields,
        "kind_label": variant.label if variant else "", "errors": errors or []},
        status=status)


async def edit_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    row = await _entry(request, r)
    kind = row.data.get("kind") if r.variants else None
    form = await request.post()
    raw = {f.name: str(form.get(f.name, "")) for f in r.fields_for(kind)}
    changes = {name: (value if value.strip() else None) for name, value in raw.items()}
    try:
        await profile.update(account, r.slug, row.id, changes)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    except EntryInvalid as exc:
        return await edit_page(request, values=raw, field_errors=exc.errors,
                               errors=exc.messages(), status=400)
    return see_other(f"/profil/{r.slug}?ok=modifie#confirmation")


async def delete_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    try:
        await profile.delete(account, r.slug, path_id(request, "eid"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    return see_other(f"/profil/{r.slug}?ok=supprime#confirmation")


def setup(app: web.Application) -> None:
    r = app.router
    slug = f"{{slug:{SLUG_PATTERN}}}"
    r.add_get("/profil", overview)
    r.add_get(f"/profil/{slug}", rubric_page)
    r.add_post(f"/profil/{slug}/ajouter", add_post)
    r.add_get(f"/profil/{slug}/{{eid}}/modifier", edit_page)
    r.add_post(f"/profil/{slug}/{{eid}}/modifier", edit_post)
    r.add_post(f"/profil/{slug}/{{eid}}/supprimer", delete_post)
