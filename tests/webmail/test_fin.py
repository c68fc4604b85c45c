"""Closing a conversation with a ``[FIN]`` subject, end to end: the professional submits over
real SMTP (STARTTLS + AUTH), the patient reads and answers through the webmail and the API.

One rule (``policy.closing``) decides for delivery and for the display: a subject that starts
with ``[FIN]`` closes the conversation the message belongs to; a bare ``[FIN]`` (case and
surrounding spaces aside) that answers no thread closes every thread with that professional.
"""

from __future__ import annotations

import asyncio
import email.utils
import smtplib
import ssl
from email.message import EmailMessage

import pytest

from mailserver.policy import Closing, closing
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, PASSWORD
from tests.webmail.conftest import World
from tests.webmail.test_api import _api_login


def _submit(runtime: Runtime, tls: ssl.SSLContext, w: World, subject: str,
            refs: str = "") -> str:
    msg = EmailMessage()
    msg["From"] = f"Dr Martin <{w.pro.address}>"
    msg["To"] = w.patient.address
    msg["Subject"] = subject
    msg["Message-ID"] = msgid = email.utils.make_msgid(domain=DOMAIN)
    msg["Date"] = email.utils.formatdate()
    if refs:
        msg["In-Reply-To"] = refs
    msg.set_content("Bonjour,\nvoici vos résultats.\n")
    host, port = runtime.ports["submission"]
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        c.login(w.pro.address, PASSWORD)
        c.send_message(msg)
    return msgid


async def _page(w: World, cid: int) -> str:
    r = await w.client.get(f"/conversations/{cid}")
    assert r.status == 200
    return await r.text()


@pytest.mark.parametrize(("subject", "answers", "expected"), [
    pytest.param("[FIN]", False, Closing.ALL_WITH_SENDER, id="exact-new"),
    pytest.param("  [fin] ", False, Closing.ALL_WITH_SENDER, id="case-and-spaces"),
    pytest.param("[FIN]", True, Closing.CONVERSATION, id="exact-answering"),
    pytest.param("[FIN] Résultats de votre prise de sang", False, Closing.CONVERSATION,
                 id="prefix-new"),
    pytest.param("[FIN] Résultats", True, Closing.CONVERSATION, id="prefix-answering"),
    pytest.param("Re: [FIN]", False, Closing.NONE, id="reply-prefix"),
    pytest.param("Résultats", False, Closing.NONE, id="plain"),
])
def test_closing_rule(subject: str, answers: bool, expected: Closing) -> None:
    assert closing(subject, answers_thread=answers) is expected
    assert closing(subject, fin_header=True, answers_thread=answers) is (
        Closing.ALL_WITH_SENDER if expected is Closing.ALL_WITH_SENDER
        else Closing.CONVERSATION)


async def test_fin_prefixed_subject_closes_its_conversation_everywhere(
        logged_in: World, runtime: Runtime, client_tls: ssl.SSLContext) -> None:
    w = logged_in
    await asyncio.to_thread(_submit, runtime, client_tls, w, "Autre sujet")
    await asyncio.to_thread(_submit, runtime, client_tls, w,
                            "[FIN] Résultats de votre prise de sang")
    convs = await w.services.conversations.list_for_patient(w.patient.id)
    assert len(convs) == 2
    closed = [c for c in convs if c.closed]
    still_open = [c for c in convs if not c.closed]
    assert len(closed) == 1 and len(still_open) == 1
    # The page, the API and the send policy agree: closed, no reply form.
    html = await _page(w, closed[0].id)
    assert "Réponses closes" in html and "/repondre" not in html
    assert "/repondre" in await _page(w, still_open[0].id)
    w.client.session.cookie_jar.clear()  # the API then authenticates by bearer token alone
    headers = await _api_login(w)
    r = await w.client.get(f"/api/conversations/{closed[0].id}", headers=headers)
    data = await r.json()
    assert (data["closed"], data["can_reply"]) == (True, False)
    r = await w.client.post(f"/api/conversations/{closed[0].id}/reply", headers=headers,
                            json={"body": "Merci docteur"})
    assert r.status == 403
    r = await w.client.post(f"/api/conversations/{still_open[0].id}/reply", headers=headers,
                            json={"body": "Merci docteur"})
    assert r.status == 201, await r.text()


async def test_fin_answering_a_thread_closes_that_thread_only(
        logged_in: World, runtime: Runtime, client_tls: ssl.SSLContext) -> None:
    w = logged_in
    first = await asyncio.to_thread(_submit, runtime, client_tls, w, "Consultation")
    await asyncio.to_thread(_submit, runtime, client_tls, w, "Autre sujet")
    await asyncio.to_thread(_submit, runtime, client_tls, w, " [fin] ", first)
    convs = await w.services.conversations.list_for_patient(w.patient.id)
    assert len(convs) == 2
    assert sorted(c.closed for c in convs) == [False, True]


async def test_bare_fin_answering_nothing_closes_every_thread_and_the_page_says_so(
        logged_in: World, runtime: Runtime, client_tls: ssl.SSLContext) -> None:
    w = logged_in
    await asyncio.to_thread(_submit, runtime, client_tls, w, "Consultation")
    await asyncio.to_thread(_submit, runtime, client_tls, w, "Autre sujet")
    # Lower case and spaces: the same rule for delivery and for the display.
    await asyncio.to_thread(_submit, runtime, client_tls, w, " [fin] ")
    convs = await w.services.conversations.list_for_patient(w.patient.id)
    assert len(convs) == 2 and all(c.closed for c in convs)
    for c in convs:
        html = await _page(w, c.id)
        assert "Réponses closes" in html
        assert "/repondre" not in html
    w.client.session.cookie_jar.clear()  # the API then authenticates by bearer token alone
    headers = await _api_login(w)
    for c in convs:
        r = await w.client.post(f"/api/conversations/{c.id}/reply", headers=headers,
                                json={"body": "Encore une question"})
        assert r.status == 403
    r = await w.client.get("/api/conversations", headers=headers)
    assert all(c["closed"] for c in (await r.json())["conversations"])


async def test_fin_first_message_title_matches_state(
        logged_in: World, runtime: Runtime, client_tls: ssl.SSLContext) -> None:
    w = logged_in
    await asyncio.to_thread(_submit, runtime, client_tls, w, "[Fin]")
    (conv,) = await w.services.conversations.list_for_patient(w.patient.id)
    html = await _page(w, conv.id)
    assert "Fin des échanges" in html
    assert conv.closed and "Réponses closes" in html
