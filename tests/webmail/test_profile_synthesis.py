"""The medical profile's synthesis and charts in the webmail: downloading the PDF, filing it in
Documents under "Ma santé en résumé" (a new document each time), attaching it to a reply
through the reply path, and the measure charts (SVG with title and description, the table of
every point with its source, the time range)."""

from __future__ import annotations

import asyncio
import email
import imaplib
import io
import re
import ssl
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy

from lxml import etree  # type: ignore[import-untyped]
from pypdf import PdfReader

from mailserver.config import Config, ListenConfig
from mailserver.lifecycle import paris_date
from mailserver.runtime import start_runtime
from tests.conftest import PASSWORD
from tests.webmail.conftest import World

SVG = "{http://www.w3.org/2000/svg}"


def _today() -> date:
    return paris_date(datetime.now(UTC))


async def _api(w: World) -> dict[str, str]:
    r = await w.client.get("/api/session")
    return {"X-CSRF-Token": (await r.json())["csrf"]}


def _pdf_text(data: bytes) -> str:
    return " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(data)).pages)


async def _fill(w: World, h: dict[str, str]) -> None:
    for slug, body in (
            ("allergies", {"substance": "Pénicilline", "reaction": "urticaire",
                           "severity": "modérée"}),
            ("maladies", {"condition": "Asthme", "since": "2010-05-01", "status": "active"}),
            ("traitements", {"medicine": "Ventoline", "dose": "100 µg", "frequency":
                             "si besoin"}),
            ("mesures", {"kind": "poids", "value": 72.5, "unit": "kg",
                         "date": (_today() - timedelta(days=3)).isoformat()})):
        r = await w.client.post(f"/api/profile/{slug}", headers=h, json=body)
        assert r.status == 201, await r.text()


async def test_download_holds_identity_and_entries(logged_in: World) -> None:
    w = logged_in
    await _fill(w, await _api(w))
    name = f"synthese-profil-medical-{_today().isoformat()}.pdf"
    for path in ("/profil/synthese.pdf", "/api/profile/synthesis.pdf"):
        r = await w.client.get(path)
        assert r.status == 200
        assert r.content_type == "application/pdf"
        assert r.headers["Content-Disposition"] == f'attachment; filename="{name}"'
        assert "sandbox" in r.headers["Content-Security-Policy"]
        text = _pdf_text(await r.read())
        for expected in ("Synthèse de mon profil médical", "Marie DUPONT", "Née en mars 1979",
                         "2 79 03 51 215 189 89", "Pénicilline", "urticaire", "Asthme",
                         "Ventoline", "72,5 kg"):
            assert expected in text, (expected, text[:600])


async def test_download_needs_login(world: World) -> None:
    r = await world.client.get("/api/profile/synthesis.pdf")
    assert r.status == 401
    assert (await r.json())["error"] == "non authentifié"
    r = await world.client.get("/profil/synthese.pdf", allow_redirects=False)
    assert r.status in (302, 303, 401)


async def test_filing_twice_makes_two_dated_documents(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    await _fill(w, h)
    ids = []
    for _ in range(2):
        r = await w.client.post("/api/profile/synthesis/file", headers=h)
        assert r.status == 201, await r.text()
        ids.append((await r.json())["document_id"])
    assert ids[0] != ids[1]
    docs = (await (await w.client.get("/api/documents?label=SYNTHESE")).json())["documents"]
    filed = {d["id"]: d for d in docs}
    title = f"Synthèse de mon profil médical du {_today().strftime('%d/%m/%Y')}"
    for did in ids:
        assert filed[did]["label"] == "Ma santé en résumé"
        assert filed[did]["title"] == title
        content = await (await w.client.get(f"/api/documents/{did}/content")).read()
        assert "Pénicilline" in _pdf_text(content)
        # document-types.csv: DOCPAT08 "Synthèse du profil médical", not the generic DOCPAT01.
        stored = await w.services.documents.get(w.patient, w.patient.id, did)
        assert stored.type_code == "DOCPAT08"


async def test_filing_from_the_page(logged_in: World) -> None:
    w = logged_in
    html = await (await w.client.get("/profil")).text()
    assert "Télécharger la synthèse" in html and "Enregistrer dans mes documents" in html
    r = await w.post("/profil/synthese/enregistrer", {}, csrf_from="/profil")
    assert r.status == 303
    assert r.headers["Location"].startswith("/documents?label=SYNTHESE&ok=synthese")
    html = await (await w.client.get(r.headers["Location"])).text()
    assert "a été enregistrée dans « Ma santé en résumé »" in html
    assert "Synthèse de mon profil médical du" in html
    r = await w.client.post("/profil/synthese/enregistrer", data={}, allow_redirects=False)
    assert r.status == 403  # no CSRF token: nothing filed
    docs = (await (await w.client.get("/api/documents")).json())["documents"]
    assert len(docs) == 1


def _inbox(raws: list[bytes]) -> list[EmailMessage]:
    out = []
    for raw in raws:
        msg = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


async def _pro_inbox(w: World) -> list[EmailMessage]:
    folder = await w.services.store.get_folder(w.pro.id, "INBOX")
    return _inbox([await w.services.store.read_raw(m.id)
                   for m in await w.services.store.list_messages(folder.id)])


async def test_reply_with_synthesis_api_and_page(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    await _fill(w, h)
    await w.pro_writes("Suivi", "Pouvez-vous m'envoyer votre profil ?")
    cid = (await w.conversation_ids())[0]
    r = await w.client.post(f"/api/conversations/{cid}/reply", headers=h,
                            json={"body": "Voici ma synthèse.", "attach_synthesis": True})
    assert r.status == 201, await r.text()
    html = await (await w.client.get(f"/conversations/{cid}")).text()
    assert "Joindre la synthèse de mon profil médical" in html
    r = await w.post(f"/conversations/{cid}/repondre",
                     {"message": "Et par la page.", "joindre_synthese": "1"},
                     csrf_from=f"/conversations/{cid}")
    assert r.status == 303, await r.text()
    replies = [m for m in await _pro_inbox(w) if "Pouvez-vous" not in m.as_string()
               and m.get_content_type() != "multipart/report"]
    assert len(replies) == 2
    name = f"synthese-profil-medical-{_today().isoformat()}.pdf"
    for reply in replies:
        atts = list(reply.iter_attachments())
        assert [(a.get_filename(), a.get_content_type()) for a in atts] == [
            (name, "application/pdf")]
        assert "Pénicilline" in _pdf_text(atts[0].get_content())


async def test_reply_with_synthesis_follows_the_send_policy(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    await w.pro_writes("Clos", "fin", headers={"X-MSS-MES": "FIN"})
    cid = (await w.conversation_ids())[0]
    r = await w.client.post(f"/api/conversations/{cid}/reply", headers=h,
                            json={"body": "question", "attach_synthesis": True})
    assert r.status == 403
    assert "clos" in (await r.json())["error"]


async def _bp(w: World, h: dict[str, str], days_ago: int, sys_: int, dia: int) -> None:
    day = (_today() - timedelta(days=days_ago)).isoformat()
    r = await w.client.post("/api/profile/mesures", headers=h, json={
        "kind": "tension", "systolic": sys_, "diastolic": dia, "unit": "mmHg", "date": day})
    assert r.status == 201, await r.text()


async def test_charts_svg_table_sources_and_range(logged_in: World) -> None:
    w = logged_in
    h = await _api(w)
    for days_ago, sys_, dia in ((2, 128, 82), (9, 131, 84), (20, 125, 80), (40, 135, 86),
                                (200, 140, 90)):
        await _bp(w, h, days_ago, sys_, dia)
    await w.services.profile.add(w.pro, w.patient.id, "mesures", {
        "kind": "tension", "systolic": 138, "diastolic": 88,
        "date": (_today() - timedelta(days=5)).isoformat()})

    r = await w.client.get("/profil/mesures/tension.svg?periode=3m")
    assert r.status == 200 and r.content_type == "image/svg+xml"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    root = etree.fromstring(await r.read())
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text.startswith("Tension artérielle (mmHg)")
    assert "5 mesures" in root.find(f"{SVG}desc").text
    assert not list(root.iter(f"{SVG}script"))

    html = await (await w.client.get("/profil/mesures?periode=3m")).text()
    assert 'src="/profil/mesures/tension.svg?periode=3m"' in html
    assert re.search(r'<img src="[^"]+" alt="Tension artérielle, 5 mesures', html)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>"
                      r"<td>([^<]+)</td></tr>", html)
    assert len(rows) == 5
    assert ("138/88", "mmHg", "Dr Claire Martin") in {r[1:] for r in rows}
    assert sum(1 for r in rows if r[3] == "Vous") == 4
    assert 'aria-current="true" class="choisi">3 mois<' in html

    html = await (await w.client.get("/profil/mesures?periode=all")).text()
    assert len(re.findall(r"<tr><td>", html)) == 6
    r = await w.client.get("/profil/mesures/inconnu.svg")
    assert r.status == 404


async def test_charts_need_login(world: World) -> None:
    r = await world.client.get("/profil/mesures/poids.svg", allow_redirects=False)
    assert r.status in (302, 303, 401)




def _imap_inbox(port: int, ctx: ssl.SSLContext, user: str) -> list[EmailMessage]:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.starttls(ssl_context=ctx)
        imap.login(user, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("SEARCH", "ALL")
        raws = []
        for uid in data[0].split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raws.append(next(p[1] for p in parts if isinstance(p, tuple)))
        imap.logout()
        return _inbox(raws)
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass


async def test_reply_with_synthesis_reaches_imap_inbox(logged_in: World, config: Config,
                                                       client_tls: ssl.SSLContext) -> None:
    """The professional's mail client (imaplib, STARTTLS) finds the reply with the PDF."""
    w = logged_in
    h = await _api(w)
    await _fill(w, h)
    await w.pro_writes("Suivi", "Votre profil, s'il vous plaît.")
    cid = (await w.conversation_ids())[0]
    r = await w.client.post(f"/api/conversations/{cid}/reply", headers=h,
                            json={"body": "Ci-joint.", "attach_synthesis": True})
    assert r.status == 201, await r.text()
    rt = await start_runtime(config, ListenConfig(imap="127.0.0.1:0"), services=w.services)
    try:
        inbox = await asyncio.to_thread(_imap_inbox, rt.ports["imap"][1], client_tls,
                                        w.pro.address)
    finally:
        await rt.close()
    name = f"synthese-profil-medical-{_today().isoformat()}.pdf"
    found = [a for m in inbox for a in m.iter_attachments() if a.get_filename() == name]
    assert len(found) == 1 and found[0].get_content_type() == "application/pdf"
    assert "Ventoline" in _pdf_text(found[0].get_content())
