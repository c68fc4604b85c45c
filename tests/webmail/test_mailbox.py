"""Conversations, reading, sanitising, attachments, replies, read receipts, pharmacies."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy

from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.webmail.conftest import World
from webmail.mailbox import PER_PAGE
from webmail.web import MAILBOX


async def _messages(world: World, account_id: int, folder: str) -> list[EmailMessage]:
    f = await world.services.store.get_folder(account_id, folder)
    out = []
    for info in await world.services.store.list_messages(f.id):
        raw = await world.services.store.read_raw(info.id)
        msg = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


async def test_list_unread_and_view_marks_read(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Compte rendu de consultation", "Voici le compte rendu.")
    r = await w.client.get("/conversations")
    html = await r.text()
    assert "Compte rendu de consultation" in html
    assert "Dr Claire Martin" in html
    assert "1 non lu" in html
    cid = (await w.conversation_ids())[0]
    r = await w.client.get(f"/conversations/{cid}")
    assert r.status == 200
    assert "Voici le compte rendu." in await r.text()
    r = await w.client.get("/conversations")
    assert "non lu" not in await r.text()


async def test_search_and_pagination(logged_in: World) -> None:
    w = logged_in
    for i in range(PER_PAGE + 2):
        await w.pro_writes(f"Sujet numéro {i}", "texte")
    r = await w.client.get("/conversations")
    html = await r.text()
    assert "Page 1 sur 2" in html
    assert html.count('class="correspondant"') == PER_PAGE
    r = await w.client.get("/conversations?page=2")
    assert (await r.text()).count('class="correspondant"') == 2
    r = await w.client.get("/conversations?q=NUMERO%2017")  # case and accents folded
    html = await r.text()
    assert "Sujet numéro 17" in html and html.count('class="correspondant"') == 1


async def test_other_patients_conversation_is_404(logged_in: World) -> None:
    w = logged_in
    other, _ = await w.services.directory.add_patient(ins=INS[1], name="Jean Durand")
    party = await w.services.delivery.party_of(w.pro)
    msg = EmailMessage()
    msg["From"] = w.pro.address
    msg["To"] = other.address
    msg["Subject"] = "Privé"
    msg["Message-ID"] = email.utils.make_msgid()
    msg.set_content("confidentiel")
    report = await w.services.delivery.deliver(party, w.pro.address, [other.address],
                                               bytes(msg))
    cid = report.conversation_ids[other.address]
    for path in (f"/conversations/{cid}", f"/api/conversations/{cid}"):
        r = await w.client.get(path)
        assert r.status == 404
    r = await w.post(f"/conversations/{cid}/repondre", {"message": "intrus"},
                     csrf_from="/conversations")
    assert r.status == 404


XSS = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<svg onload=alert(1)><circle/></svg>',
    '<a href="javascript:alert(1)">clic</a>',
    '<a href="JaVaScRiPt:alert(1)">clic</a>',
    '<a href="java&#x09;script:alert(1)">clic</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<body onload=alert(1)>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<style>body{background:url("javascript:alert(1)")}</style>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    ('<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph>'
     '</table></mtext></math>'),
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<details open ontoggle=alert(1)>',
    '<video><source onerror="alert(1)"></video>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<a href="/deconnexion">relative</a>',
    '<img src="//evil.example/x.png">',
    '<p onclick="alert(1)" onmouseover="alert(1)">x</p>',
    '<template><script>alert(1)</script></template>',
    '"><script>alert(1)</script>',
    '<scr<script>ipt>alert(1)</script>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<textarea><script>alert(1)</script></textarea>',
]
_DANGER = re.compile(
    r"<\s*(script|iframe|object|embed|form|svg|math|base|meta|style|link|body|template|video|"
    r"source|details|button|textarea|noscript)\b|\son\w+\s*=|javascript:|data:text|"
    r"data:image/svg|href=\"/deconnexion|src=\"//", re.IGNORECASE)


async def test_xss_corpus_never_survives(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Corpus", "texte brut", html="<p>début</p>" + "".join(
        f"<div>{p}</div>" for p in XSS) + "<p>fin</p>")
    cid = (await w.conversation_ids())[0]
    for path in (f"/conversations/{cid}", f"/conversations/{cid}?images=1"):
        html = await (await w.client.get(path)).text()
        body = html.split('<div class="corps html" tabindex="0">', 1)[1].split("</article>", 1)[0]
        assert "début" in body and "fin" in body
        assert not _DANGER.search(body), _DANGER.search(body)
    data = await (await w.client.get(f"/api/conversations/{cid}")).json()
    fragment = data["messages"][0]["html"]
    assert not _DANGER.search(fragment)


async def test_each_xss_payload_alone(logged_in: World) -> None:
    from webmail.render import sanitise_html

    for payload in XSS:
        safe, _ = sanitise_html(payload, show_images=True)
        assert not _DANGER.search(safe), (payload, safe)


async def test_plain_text_is_escaped(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Texte", "<script>alert(1)</script> & <b>gras</b>")
    cid = (await w.conversation_ids())[0]
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;gras&lt;/b&gt;" in html
    assert "<script>alert" not in html


async def test_remote_images_blocked_until_asked_and_tracking_stripped(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Images", "x", html=(
        '<p><img src="https://tracker.example/pixel.gif?id=42" alt="logo">'
        '<a href="https://site.example/page?utm_source=mail&amp;id=7&amp;fbclid=abc">lien</a>'
        "</p>"))
    cid = (await w.conversation_ids())[0]
    r = await w.client.get(f"/conversations/{cid}")
    html = await r.text()
    assert "tracker.example" not in html
    assert "/static/image-bloquee.svg" in html
    assert "Afficher les images" in html
    assert 'href="https://site.example/page?id=7"' in html
    assert "utm_source" not in html and "fbclid" not in html
    assert "https:" not in r.headers["Content-Security-Policy"]
    r = await w.client.get(f"/conversations/{cid}?images=1")
    html = await r.text()
    assert 'src="https://tracker.example/pixel.gif?id=42"' in html
    assert "img-src 'self' data: https:" in r.headers["Content-Security-Policy"]


async def test_attachment_download_and_filing_label(logged_in: World) -> None:
    w = logged_in
    pdf = b"%PDF-1.4 fake"
    await w.pro_writes("Ordonnance", "ci-joint", attachments=[
        ("ordonnance.pdf", "application/pdf", pdf),
        ("page.html", "text/html", b"<script>alert(1)</script>")])
    cid = (await w.conversation_ids())[0]
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "classé dans Documents" not in html  # no bridge installed
    links = re.findall(r'href="(/conversations/\d+/messages/\d+/pieces/\d+)"', html)
    assert len(links) == 2
    r = await w.client.get(links[0])
    assert r.status == 200 and await r.read() == pdf
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in r.headers["Content-Disposition"]
    assert "ordonnance.pdf" in r.headers["Content-Disposition"]
    assert "sandbox" in r.headers["Content-Security-Policy"]
    r = await w.client.get(links[1])
    assert r.headers["Content-Type"] == "application/octet-stream"

    calls = []

    class Filings:  # the dossier bridge, as the webmail's DocumentFilings seam sees it
        async def filings_for_message(self, patient_id: int, message_id: int
                                      ) -> list[tuple[str, str]]:
            calls.append((patient_id, message_id))
            return [("ordonnance.pdf", "Ordonnances et soins")]

    w.client.app[MAILBOX].documents = Filings()
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "classé dans Documents › Ordonnances et soins" in html
    assert calls and calls[0][0] == w.patient.id
    # Someone else's message id in the URL: 404.
    r = await w.client.get(f"/conversations/{cid}/messages/999999/pieces/1")
    assert r.status == 404


async def test_reply_with_attachment_reaches_professional(logged_in: World) -> None:
    w = logged_in
    original = await w.pro_writes("Bilan sanguin", "Merci de me confirmer.")
    cid = (await w.conversation_ids())[0]
    token = await w.csrf(f"/conversations/{cid}")
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("message", "Bien reçu, merci docteur.")
    form.add_field("fichiers", b"%PDF-1.4 scan", filename="analyse.pdf",
                   content_type="application/pdf")
    r = await w.client.post(f"/conversations/{cid}/repondre", data=form,
                            allow_redirects=False)
    assert r.status == 303, await r.text()
    inbox = await _messages(w, w.pro.id, "INBOX")
    assert len(inbox) == 1
    reply = inbox[0]
    assert w.patient.address in str(reply["From"])
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in str(reply["References"])
    assert str(reply["Subject"]) == "RE: Bilan sanguin"
    atts = list(reply.iter_attachments())
    assert [a.get_filename() for a in atts] == ["analyse.pdf"]
    assert atts[0].get_content() == b"%PDF-1.4 scan"
    # The patient's copy is in their Sent folder, in the same conversation.
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "Bien reçu, merci docteur." in html and "Vous" in html


async def test_closed_conversation_refuses_reply(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Fin de suivi", "Au revoir", headers={"X-MSS-MES": "FIN"})
    cid = (await w.conversation_ids())[0]
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "Réponses closes" in html and 'name="message"' not in html
    r = await w.post(f"/conversations/{cid}/repondre", {"message": "encore une question"},
                     csrf_from="/conversations")
    assert r.status == 403
    assert "clos cette conversation" in await r.text()
    assert await _messages(w, w.pro.id, "INBOX") == []


async def test_fin_subject_closes_earlier_threads(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Suivi", "texte")
    await w.pro_writes("[FIN]", "terminé")
    for cid in await w.conversation_ids():
        html = await (await w.client.get(f"/conversations/{cid}")).text()
        assert "Réponses closes" in html


async def test_read_receipt_sent_once(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Accusé demandé", "Merci de lire",
                       headers={"Disposition-Notification-To": w.pro.address})
    cid = (await w.conversation_ids())[0]
    await w.client.get(f"/conversations/{cid}")
    await w.client.get(f"/conversations/{cid}")
    inbox = await _messages(w, w.pro.id, "INBOX")
    assert len(inbox) == 1
    mdn = inbox[0]
    assert mdn.get_content_type() == "multipart/report"
    assert mdn.get_param("report-type") == "disposition-notification"
    assert str(mdn["From"]) == w.patient.address
    raw = mdn.as_bytes()
    assert b"displayed" in raw and b"MDN-sent-automatically" in raw
    # No receipt for messages that did not ask.
    await w.pro_writes("Sans accusé", "rien")
    for c in await w.conversation_ids():
        await w.client.get(f"/conversations/{c}")
    assert len(await _messages(w, w.pro.id, "INBOX")) == 1


async def test_refused_reply_marks_nothing_read_and_sends_no_receipt(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Accusé demandé", "Merci de lire",
                       headers={"Disposition-Notification-To": w.pro.address})
    cid = (await w.conversation_ids())[0]
    # An empty reply is refused; the conversation shown again with the error changes nothing.
    r = await w.post(f"/conversations/{cid}/repondre", {"message": "  "},
                     csrf_from="/conversations")
    assert r.status == 400 and "Le message est vide." in await r.text()
    assert await _messages(w, w.pro.id, "INBOX") == []  # no read receipt
    inbox = await w.services.store.get_folder(w.patient.id, "INBOX")
    (info,) = await w.services.store.list_messages(inbox.id)
    assert "\\Seen" not in info.flags
    # Opening it does both.
    await w.client.get(f"/conversations/{cid}")
    assert len(await _messages(w, w.pro.id, "INBOX")) == 1


class FakePharmacies:
    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    async def pharmacies_for(self, patient_account_id: int) -> frozenset[str]:
        return self.allowed


async def test_new_message_only_to_allowed_pharmacies(logged_in: World) -> None:
    w = logged_in
    html = await (await w.client.get("/conversations")).text()
    assert "nouveau-message" not in html  # no pharmacy source: no button
    assert (await w.client.get("/nouveau-message")).status == 404
    pharmacy = await w.services.directory.add_organisation(
        email=f"pharmacie.centrale@{DOMAIN}", name="Pharmacie Centrale",
        structure_id="1750000000", password=PASSWORD)
    other = await w.services.directory.add_professional(
        rpps=RPPS[1], email=f"dr.autre@{DOMAIN}", name="Dr Autre", profession="10",
        password=PASSWORD)
    w.services.delivery.pharmacies = FakePharmacies(frozenset({pharmacy.address}))
    html = await (await w.client.get("/conversations")).text()
    assert 'href="/nouveau-message"' in html
    html = await (await w.client.get("/nouveau-message")).text()
    assert "Pharmacie Centrale" in html and other.address not in html
    r = await w.post("/nouveau-message", {"pharmacie": pharmacy.address, "objet": "Question",
                                          "message": "Mon traitement est-il prêt ?"})
    assert r.status == 303
    assert len(await _messages(w, pharmacy.id, "INBOX")) == 1
    # A forged recipient is refused by the send policy.
    r = await w.post("/nouveau-message", {"pharmacie": other.address, "objet": "x",
                                          "message": "y"})
    assert r.status == 403
    assert "pharmacie" in await r.text()
    assert await _messages(w, other.id, "INBOX") == []


async def test_notification_job_has_no_health_content(logged_in: World) -> None:

    w = logged_in
    before = len(w.outbox_messages())
    await w.pro_writes("Résultat VIH confidentiel", "Votre sérologie est ...")
    ran = await w.services.runner.run_due()
    assert ran >= 1
    notes = w.outbox_messages()[before:]
    assert len(notes) == 1
    note = notes[0]
    assert note["To"] == "marie@perso.example"
    text = str(note["Subject"]) + note.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    for secret in ("VIH", "sérologie", "Martin", "Résultat", w.pro.address):
        assert secret not in text
    assert "http://webmail.test/connexion" in text
