"""``/api/profile``: the patient's medical profile in JSON, with the same rules as the pages
(`webmail.profile_views`).

``GET /api/profile`` → ``{"rubrics": {"<slug>": [entries]}, "computed": {"imc": ...}}``;
``POST /api/profile/<slug>`` (one entry) → 201 and the entry with its ``id``;
``PATCH /api/profile/<slug>/<id>`` (fields to change, ``null`` removes one) → the entry;
``DELETE /api/profile/<slug>/<id>``. Refused input → 400
``{"error": "<Label : message>", "details": [...], "fields": {"<field>": "<message>"}}``;
another patient's entry, or an entry of another rubric → 404.
"""

from __future__ import annotations

from aiohttp import web

from mailserver.errors import NotFound
from mailserver.profile import EntryInvalid
from webmail.params import path_id
from webmail.profile import SLUG_PATTERN, entry_json, profile_json, profile_of, rubric_of
from webmail.web import current_account, json_body

__all__ = ["setup"]


def _invalid(exc: EntryInvalid) -> web.Response:
    messages = exc.messages()
    return web.json_response({"error": messages[0], "details": messages,
                              "fields": exc.errors}, status=400)


async def api_profile(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    return web.json_response(await profile_json(profile_of(request), account))


async def api_add(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    data = await json_body(request)
    try:
        row = await profile.add(account, r.slug, data)
    except EntryInvalid as exc:
        return _invalid(exc)
    return web.json_response(entry_json(row), status=201)


async def api_patch(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    entry_id = path_id(request, "eid")
    data = await json_body(request)
    try:
        row = await profile.update(account, r.slug, entry_id, data)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    except EntryInvalid as exc:
        return _invalid(exc)
    return web.json_response(entry_json(row))


async def api_delete(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    profile, r = profile_of(request), rubric_of(request)
    try:
        await profile.delete(account, r.slug, path_id(request, "eid"))
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    return web.json_response({"deleted": True})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/profile", api_profile)
    r.add_post(f"/api/profile/{{slug:{SLUG_PATTERN}}}", api_add)
    r.add_patch(f"/api/profile/{{slug:{SLUG_PATTERN}}}/{{eid}}", api_patch)
    r.add_delete(f"/api/profile/{{slug:{SLUG_PATTERN}}}/{{eid}}", api_delete)
