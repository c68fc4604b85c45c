"""HTML views of the mailbox: conversations, messages, attachments, replies, new messages."""

from __future__ import annotations

import urllib.parse
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from mailserver.directory.service import AccountInfo
from webmail.clientaddr import client_address
from webmail.mailbox import (
    MESSAGES_PER_PAGE,
    Mailbox,
    ReplyRefused,
    Upload,
)
from webmail.params import page_param, path_id
from webmail.profile_synthesis import can_attach, synthesis_upload, wants_synthesis
from webmail.render import part_bytes
from webmail.web import (
    DEPS,
    EXPIRED_VIEWS,
    MAILBOX,
    R_ATTACHMENT_CSP,
    R_SHOW_IMAGES,
    current_account,
    render,
    see_other,
)

__all__ = ["setup", "uploads_of", "conversation_view_model", "attachment_response"]


def uploads_of(form: MultiDictProxy[Any], name: str = "fichiers") -> list[Upload]:
    """Files of a multipart form (empty file inputs are skipped)."""
    out = []
    for field in form.getall(name, []):
        if isinstance(field, web.FileField):
            data = field.file.read()
            if field.filename or data:
                out.append(Upload(field.filename or "fichier", field.content_type, data))
    return out


def _client(request: web.Request) -> str:
    return client_address(request, request.app[DEPS].settings.webmail.trusted_proxies)


async def conversations(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    mailbox = request.app[MAILBOX]
    query = request.query.get("q", "")[:100]
    page = page_param(request)
    items, pages = await mailbox.conversations(account, query=query, page=page)
    page = min(max(1, page), pages)
    pharmacies = await mailbox.pharmacies(account)
    return render(request, "conversations.html", {
        "items": items, "query": query, "page": page, "pages": pages,
        "can_start": bool(pharmacies), "qs": urllib.parse.quote(query),
        "sent": request.query.get("envoye") == "1"})


async def conversation_view_model(mailbox: Mailbox, account: AccountInfo, cid: int,
                                  show_images: bool, page: int = 1, *,
                                  mark_read: bool = True,
                                  client: str | None = None) -> dict[str, Any]:
    """Everything a conversation page (or its JSON) shows: one page of its messages, newest
    first (``MESSAGES_PER_PAGE``); marks them read and sends the read receipts they ask for,
    unless ``mark_read`` is False (a refused reply shown again changes nothing)."""
    conv = await mailbox.conversation(account, cid)
    if conv is None:
        raise web.HTTPNotFound()
    everything = await mailbox.messages(account, cid)  # metadata only, oldest first
    pages = max(1, -(-len(everything) // MESSAGES_PER_PAGE))
    page = min(max(1, page), pages)
    newest_first = everything[::-1]
    stored = newest_first[(page - 1) * MESSAGES_PER_PAGE: page * MESSAGES_PER_PAGE]
    rendered = await mailbox.rendered(account, cid, stored, show_images)
    messages: list[dict[str, Any]] = []
    for m in stored:
        r = rendered[m.id]
        # What the bridge filed is shown beside attachments: asked only when there are some.
        filings = await mailbox.filings(account, m.id) \
            if m.folder == "INBOX" and r.attachments else {}
        messages.append({"stored": m, "r": r, "mine": m.folder == "Sent",
                         "filings": filings, "unread": m.folder == "INBOX" and not m.seen})
    if mark_read:
        await mailbox.mark_read(account, cid, stored, client)
        await mailbox.send_receipts(account, stored, {x["stored"].id: x["r"] for x in messages})
    refusal = await mailbox.reply_refusal(account, cid, everything)
    title, correspondent = await mailbox.heading(conv)
    blocked = sum(x["r"].blocked_images for x in messages)
    return {"conv": conv, "messages": messages, "correspondent": correspondent,
            "blocked": blocked, "title": title, "page": page, "pages": pages,
            "total": len(everything), "first": (page - 1) * MESSAGES_PER_PAGE + 1,
            "can_reply": refusal is None, "reply_refused": refusal or ""}


async def conversation(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    cid = path_id(request, "cid")
    show_images = request.query.get("images") == "1"
    request[R_SHOW_IMAGES] = show_images
    model = await conversation_view_model(request.app[MAILBOX], account, cid, show_images,
                                          page_param(request), client=_client(request))
    model.update({"show_images": show_images, "errors": [],
                  "sent": request.query.get("envoye") == "1",
                  "can_attach_synthesis": can_attach(request)})
    return render(request, "conversation.html", model)


async def reply(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    cid = path_id(request, "cid")
    form = await request.post()
    body = str(form.get("message", ""))
    uploads = uploads_of(form)
    attach = wants_synthesis(form.get("joindre_synthese"))
    if attach:
        uploads.append(await synthesis_upload(request, account))
    try:
        await request.app[MAILBOX].reply(account, cid, body, uploads)
    except ReplyRefused as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from exc
        model = await conversation_view_model(request.app[MAILBOX], account, cid, False,
                                              mark_read=False)
        model.update({"show_images": False, "errors": [exc.text], "sent": False,
                      "draft": body, "can_attach_synthesis": can_attach(request),
                      "attach_synthesis": attach})
        return render(request, "conversation.html", model, status=exc.status)
    return see_other(f"/conversations/{cid}?envoye=1#confirmation")


async def reply_expired(request: web.Request) -> web.StreamResponse:
    """A reply posted after the session ended: nothing is sent; the typed text comes back
    with a request to log in again (app.js then restores it in the conversation's form)."""
    cid = path_id(request, "cid")
    form = await request.post()
    return render(request, "reponse_non_envoyee.html", {
        "cid": cid, "draft": str(form.get("message", "")),
        "had_files": bool(uploads_of(form))}, status=403)


def attachment_response(data: bytes, filename: str, content_type: str, inline: bool
                        ) -> web.Response:
    """A download that can never run in our origin: attachment disposition and a generic
    type, except known raster images shown inline (cid: images)."""
    quoted = urllib.parse.quote(filename, safe="")
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                         for c in filename)
    disposition = "inline" if inline else "attachment"
    ctype = content_type if inline else "application/octet-stream"
    response = web.Response(body=data, content_type=ctype, headers={
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quoted}",
    })
    # No script may ever run from an attachment, even if a browser sniffed it.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


async def attachment(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    mailbox = request.app[MAILBOX]
    cid = path_id(request, "cid")
    mid = path_id(request, "mid")
    idx = path_id(request, "idx", low=0)
    if await mailbox.conversation(account, cid) is None:
        raise web.HTTPNotFound()
    message = await mailbox.message(account, cid, mid)
    if message is None:
        raise web.HTTPNotFound()
    found = part_bytes(await mailbox.read(message), idx)
    if found is None:
        raise web.HTTPNotFound()
    att, data = found
    inline = request.query.get("inline") == "1" and att.content_type in (
        "image/png", "image/jpeg", "image/gif", "image/webp")
    response = attachment_response(data, att.filename, att.content_type, inline)
    # Our CSP for pages is set by the middleware; keep the attachment's own stricter one.
    request[R_ATTACHMENT_CSP] = response.headers["Content-Security-Policy"]
    return response


async def new_message_get(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    pharmacies = await request.app[MAILBOX].pharmacies(account)
    if not pharmacies:
        raise web.HTTPNotFound()
    return render(request, "new_message.html", {"pharmacies": pharmacies, "errors": [],
                                                "form": {}})


async def new_message_post(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    mailbox = request.app[MAILBOX]
    pharmacies = await mailbox.pharmacies(account)
    form = await request.post()
    values = {k: str(form.get(k, "")) for k in ("pharmacie", "objet", "message")}
    try:
        await mailbox.new_message(account, values["pharmacie"], values["objet"],
                                  values["message"], uploads_of(form))
    except ReplyRefused as exc:
        if not pharmacies:
            raise web.HTTPForbidden() from exc
        return render(request, "new_message.html", {"pharmacies": pharmacies,
                                                    "errors": [exc.text], "form": values},
                      status=exc.status)
    return see_other("/conversations?envoye=1#confirmation")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/conversations", conversations)
    r.add_get("/conversations/{cid}", conversation)
    r.add_post("/conversations/{cid}/repondre", reply)
    app[EXPIRED_VIEWS]["/conversations/{cid}/repondre"] = reply_expired
    r.add_get("/conversations/{cid}/messages/{mid}/pieces/{idx}", attachment)
    r.add_get("/nouveau-message", new_message_get)
    r.add_post("/nouveau-message", new_message_post)
