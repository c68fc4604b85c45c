"""The patient's Documents space in the webmail and in /api/: list, view, download, add, edit,
mask, the access log with its integrity verdict, consents, and another patient's ids refused."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import FormData
from sqlalchemy import delete

from attachments.labels import Label
from dossier_bridge.models import DossierLogEntry
from dossier_bridge.store import NewDocument
from tests.attachments.corpus import make_cda, make_pdf
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.webmail.conftest import World

PDF = make_pdf("Ordonnance : paracétamol 1 g")
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
STRUCTURE = "11750000001"


async def _filed(w: World, title: str = "Bilan sanguin", label: Label = Label.BIOLOGIE,
                 content: bytes = b"resultat", *, review: bool = False,
                 patient_id: int | None = None) -> int:
    import hashlib
    doc = NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                      filename="bilan.txt", mime_type="text/plain", label=label,
                      needs_review=review,
                      meta={"title": title, "author": {"name": "Dr Claire Martin",
                                                       "profession": "10"}})
    res = await w.services.documents.file(patient_id or w.patient.id, doc,
                                          actor_account_id=w.pro.id,
                                          actor={"kind": "pro", "name": "Dr Claire Martin",
                                                 "profession": "10"})
    return res.document_id


async def _csrf(w: World, path: str = "/documents") -> str:
    html = await (await w.client.get(path)).text()
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:300]
    return m.group(1)


async def _api(w: World) -> dict[str, str]:
    r = await w.client.get("/api/session")
    return {"X-CSRF-Token": (await r.json())["csrf"]}


async def test_list_counts_filters_and_view(logged_in: World) -> None:
    w = logged_in
    did = await _filed(w)
    await _filed(w, "Ordonnance", Label.ORD_SOIN, b"ordo")
    html = await (await w.client.get("/documents")).text()
    for name in ("Radio, écho, scanner, IRM", "Ma santé en résumé", "Ordonnances et soins",
                 "Comptes rendus", "Résultats de biologie", "Prévention et dépistage",
                 "Certificats médicaux", "Autres documents"):
        assert name.replace("'", "&#39;") in html
    assert "Bilan sanguin" in html and "Ordonnance" in html
    html = await (await w.client.get("/documents?label=BIOLOGIE")).text()
    assert "Bilan sanguin" in html and ">Ordonnance<" not in html
    html = await (await w.client.get("/documents?added_by=me")).text()
    assert "Bilan sanguin" not in html
    html = await (await w.client.get("/documents?author=martin")).text()
    assert "Bilan sanguin" in html
    html = await (await w.client.get("/documents?from=2000-01-01&to=2000-12-31")).text()
    assert "Bilan sanguin" not in html
    r = await w.client.get(f"/documents/{did}")
    assert r.status == 200 and "Bilan sanguin" in await r.text()
    r = await w.client.get(f"/documents/{did}/contenu")
    assert r.status == 200 and await r.read() == b"resultat"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in r.headers["Content-Security-Policy"]


async def test_api_list_shape(logged_in: World) -> None:
    w = logged_in
    await _filed(w)
    data = await (await w.client.get("/api/documents?label=BIOLOGIE")).json()
    doc = data["documents"][0]
    assert {"id", "title", "label", "date", "author", "added_by", "masked", "flagged",
            "content_type", "size"} <= set(doc)
    assert doc["label"] == "Résultats de biologie" and doc["added_by"] == "pro"
    assert {"label": "Résultats de biologie", "code": "BIOLOGIE", "count": 1} in data["labels"]
    assert len(data["labels"]) == 8


async def test_add_pdf_edit_and_delete_own(logged_in: World) -> None:
    w = logged_in
    token = await _csrf(w, "/documents/ajouter")
    form = FormData()
    form.add_field("csrf", token)
    form.add_field("titre", "Ordonnance scannée")
    form.add_field("date", "2024-03-02")
    form.add_field("rubrique", "ORD_SOIN")
    form.add_field("fichier", PDF, filename="ordo.pdf", content_type="application/pdf")
    r = await w.client.post("/documents/ajouter", data=form, allow_redirects=False)
    assert r.status == 303, await r.text()
    did = int(r.headers["Location"].split("/")[2].split("?")[0])
    html = await (await w.client.get(f"/documents/{did}")).text()
    # No frame (browsers refuse a PDF in a sandboxed one): the browser's viewer, in a tab.
    assert "Ordonnance scannée" in html and "<iframe" not in html
    # A document's date is a day: no storage midnight shown as a time.
    assert "2 mars 2024" in html and "2 mars 2024 à" not in html
    assert f'href="/documents/{did}/contenu?inline=1" target="_blank"' in html
    r = await w.client.get(f"/documents/{did}/contenu?inline=1")
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("inline")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    headers = await _api(w)
    r = await w.client.patch(f"/api/documents/{did}", json={
        "title": "Ordonnance du 2 mars", "date": "2024-03-03", "label": "Autres documents"},
        headers=headers)
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["title"] == "Ordonnance du 2 mars" and data["label"] == "Autres documents"
    assert data["date"].startswith("2024-03-03") and data["added_by"] == "me"
    r = await w.client.delete(f"/api/documents/{did}", headers=headers)
    assert r.status == 200
    assert (await w.client.get(f"/documents/{did}")).status == 404
    actions = [e["action"] for e in (await (await w.client.get("/api/access-log")).json())[
        "entries"]]
    assert actions[:4] == ["delete", "edit", "relabel", "file"]


async def test_add_refuses_hostile_and_wrong_types(logged_in: World) -> None:
    w = logged_in
    headers = await _api(w)
    for name, ctype, data, expected in (
            ("faux.pdf", "application/pdf", b"MZ\x90\x00 not a pdf", "ne peut pas"),
            ("page.html", "text/html", b"<script>alert(1)</script>", "PDF, JPEG et PNG"),
            ("vide.png", "image/png", b"", "Choisissez un fichier")):
        form = FormData()
        form.add_field("title", "x")
        form.add_field("date", "2024-01-01")
        form.add_field("label", "AUTR_DOC")
        form.add_field("file", data, filename=name, content_type=ctype)
        r = await w.client.post("/api/documents", data=form, headers=headers)
        assert r.status == 400, (name, await r.text())
        assert expected in (await r.json())["error"]
    assert (await (await w.client.get("/api/documents")).json())["documents"] == []
    form = FormData()
    for k, v in (("title", "Radio"), ("date", "2024-01-01"), ("label", "RADIO_SC")):
        form.add_field(k, v)
    form.add_field("file", PNG, filename="radio.png", content_type="image/png")
    r = await w.client.post("/api/documents", data=form, headers=headers)
    assert r.status == 201, await r.text()
    assert (await r.json())["content_type"] == "image/png"


async def test_patch_and_delete_refused_on_professionals_documents(logged_in: World) -> None:
    w = logged_in
    did = await _filed(w)
    flagged = await _filed(w, "Document incertain", Label.AUTR_DOC, b"incertain", review=True)
    headers = await _api(w)
    for body in ({"title": "autre"}, {"date": "2020-01-01"}, {"label": "Comptes rendus"}):
        r = await w.client.patch(f"/api/documents/{did}", json=body, headers=headers)
        assert r.status == 403
        assert "que vous avez ajoutés" in (await r.json())["error"]
    r = await w.client.delete(f"/api/documents/{did}", headers=headers)
    assert r.status == 403
    r = await w.client.patch(f"/api/documents/{flagged}", json={"label": "CPT_REND"},
                             headers=headers)
    assert r.status == 200 and (await r.json())["flagged"] is False
    log = (await (await w.client.get("/api/access-log")).json())["entries"]
    assert log[0]["action"] == "relabel" and log[0]["document_id"] == flagged
    r = await w.client.patch(f"/api/documents/{did}", json={"masked": True}, headers=headers)
    assert r.status == 200 and (await r.json())["masked"] is True
    html = await (await w.client.get(f"/documents/{did}")).text()
    assert "médecin traitant le voit toujours" in html


async def test_mask_in_page_and_treating_doctor_still_reads(logged_in: World) -> None:
    w = logged_in
    did = await _filed(w)
    store = w.services.documents
    nurse = await w.services.directory.add_professional(
        rpps=RPPS[1], email=f"inf.b@{DOMAIN}", name="Inès Blanc", profession="60",
        password=PASSWORD, structure_id=STRUCTURE)
    await store.consents.grant(w.patient.id, "structure", STRUCTURE)
    await store.read(nurse, w.patient.id, did)
    token = await _csrf(w, f"/documents/{did}")
    r = await w.client.post(f"/documents/{did}/masquer", data={"csrf": token, "masquer": "1"},
                            allow_redirects=False)
    assert r.status == 303
    assert [d.id for d in await store.list(nurse, w.patient.id)] == []
    await store.consents.set_treating_doctor(w.patient.id, w.pro)
    assert [d.id for d in await store.list(w.pro, w.patient.id)] == [did]
    html = await (await w.client.get("/documents/historique")).text()
    assert "Inès Blanc" in html and "Infirmier" in html and STRUCTURE in html
    assert "complet et intact" in html
    data = await (await w.client.get("/api/access-log")).json()
    assert data["intact"] is True
    read = next(e for e in data["entries"] if e["action"] == "read")
    assert read["who"] == "Inès Blanc" and read["profession"] == "Infirmier"
    assert read["document_id"] == did and read["structure"] == STRUCTURE
    # Entries that recorded no title (masking) show the document's title, not "document".
    mask = next(e for e in data["entries"] if e["action"] == "mask")
    assert mask["document_id"] == did and mask["document_title"] == "Bilan sanguin"


async def test_access_log_truncation_shown(logged_in: World) -> None:
    w = logged_in
    await _filed(w)
    await _filed(w, "Second", Label.CPT_REND, b"second")
    assert (await (await w.client.get("/api/access-log")).json())["intact"] is True
    async with w.services.db.session() as s:
        await s.execute(delete(DossierLogEntry).where(
            DossierLogEntry.patient_account_id == w.patient.id, DossierLogEntry.seq == 2))
        await s.commit()
    assert (await (await w.client.get("/api/access-log")).json())["intact"] is False
    html = await (await w.client.get("/documents/historique")).text()
    assert "des entrées ont été supprimées" in html


async def test_consents_listed_and_revoked(logged_in: World) -> None:
    w = logged_in
    store = w.services.documents
    team = await store.consents.create_team("Équipe du cabinet")
    await store.consents.grant(w.patient.id, "team", str(team))
    await store.consents.grant(w.patient.id, "structure", STRUCTURE)
    data = await (await w.client.get("/api/consents")).json()
    names = {c["name"]: c["id"] for c in data["consents"]}
    assert set(names) == {"Équipe du cabinet", STRUCTURE} and data["treating_doctor"] is None
    html = await (await w.client.get("/consentements")).text()
    assert "Équipe du cabinet" in html and "Retirer l'autorisation" in html
    token = await _csrf(w, "/consentements")
    r = await w.client.post(f"/consentements/{names['Équipe du cabinet']}/retirer",
                            data={"csrf": token}, allow_redirects=False)
    assert r.status == 303
    r = await w.client.delete(f"/api/consents/{names[STRUCTURE]}", headers=await _api(w))
    assert r.status == 200
    assert await store.consents.list(w.patient.id) == []
    r = await w.client.post("/consentements/medecin-traitant",
                            data={"csrf": token, "adresse": w.pro.address},
                            allow_redirects=False)
    assert r.status == 303
    doctor = (await (await w.client.get("/api/consents")).json())["treating_doctor"]
    assert doctor["address"] == w.pro.address


async def test_another_patients_document_is_not_found(logged_in: World) -> None:
    w = logged_in
    other, _ = await w.services.directory.add_patient(ins=INS[1], name="Paul Durand")
    theirs = await _filed(w, "Le bilan de Paul", patient_id=other.id)
    team = await w.services.documents.consents.create_team("Équipe de Paul")
    await w.services.documents.consents.grant(other.id, "team", str(team))
    their_consent = (await w.services.documents.consents.list(other.id))[0].id
    headers = await _api(w)
    token = await _csrf(w)
    checks: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/documents/{theirs}", {}), ("GET", f"/documents/{theirs}/contenu", {}),
        ("POST", f"/documents/{theirs}/masquer", {"data": {"csrf": token, "masquer": "1"}}),
        ("POST", f"/documents/{theirs}/supprimer", {"data": {"csrf": token}}),
        ("POST", f"/documents/{theirs}/modifier", {"data": {"csrf": token, "titre": "x"}}),
        ("POST", f"/consentements/{their_consent}/retirer", {"data": {"csrf": token}}),
        ("GET", f"/api/documents/{theirs}", {}), ("GET", f"/api/documents/{theirs}/content", {}),
        ("PATCH", f"/api/documents/{theirs}", {"json": {"masked": True}, "headers": headers}),
        ("DELETE", f"/api/documents/{theirs}", {"headers": headers}),
        ("DELETE", f"/api/consents/{their_consent}", {"headers": headers}),
    ]
    for method, path, kw in checks:
        r = await w.client.request(method, path, allow_redirects=False, **kw)
        assert r.status == 404, (method, path, r.status)
    doc = await w.services.documents.get(other, other.id, theirs)
    assert not doc.masked and doc.title == "Le bilan de Paul"
    assert len(await w.services.documents.consents.list(other.id)) == 1
    listing = await (await w.client.get("/api/documents")).json()
    assert listing["documents"] == []


async def test_documents_require_login(world: World) -> None:
    for path in ("/api/documents", "/api/access-log", "/api/consents"):
        assert (await world.client.get(path)).status == 401
    r = await world.client.get("/documents", allow_redirects=False)
    assert r.status == 303


async def test_cda_is_shown_as_readable_text(logged_in: World) -> None:
    # A structured CDA (sections with titles and narrative text) is rendered in the page as
    # headings and paragraphs, escaped, never as raw XML; a script in the narrative is text.
    w = logged_in
    cda = make_cda("11502-2", title="Bilan biologique", ins=INS[0]).replace(
        b'<component><nonXMLBody><text mediaType="text/plain">corps</text></nonXMLBody>'
        b'</component>',
        "<component><structuredBody><component><section>"
        "<title>Hématologie</title><text><table><tr><td>Hémoglobine</td><td>13,5 g/dL</td>"
        "</tr></table></text></section></component><component><section>"
        "<title>Conclusion</title><text><paragraph>Bilan normal &lt;script&gt;alert(1)"
        "&lt;/script&gt;</paragraph></text></section></component></structuredBody>"
        "</component>".encode())
    did = await _filed(w, "Bilan biologique", content=cda)
    html = await (await w.client.get(f"/documents/{did}")).text()
    assert "<h3>Hématologie</h3>" in html and "<p>Hémoglobine 13,5 g/dL</p>" in html
    assert "<h3>Conclusion</h3>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "ClinicalDocument" not in html and "recordTarget" not in html
    assert "Bilan biologique" in html
