"""The patient's data export: the ZIP's layout and contents (messages byte for byte as the
store serves them to IMAP ``BODY[]``, documents and their SHA-256, the indexes, the profile,
the access log, the README), streamed in chunks; the page, the API and the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from attachments.labels import Label
from dossier_bridge.store import NewDocument
from mailserver.cli.accounts_export import export_to
from mailserver.store.export_queries import ExportQueries
from tests.attachments.corpus import make_pdf
from tests.conftest import INS
from tests.webmail.conftest import World

PDF = make_pdf("Compte rendu opératoire")


async def _file(w: World, title: str, content: bytes, filename: str, mime: str,
                label: Label = Label.BIOLOGIE) -> int:
    doc = NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                      filename=filename, mime_type=mime, label=label, needs_review=False,
                      meta={"title": title, "author": {"name": "Dr Claire Martin",
                                                       "profession": "10"}})
    res = await w.services.documents.file(w.patient.id, doc, actor_account_id=w.pro.id,
                                          actor={"kind": "pro", "name": "Dr Claire Martin",
                                                 "profession": "10"})
    return res.document_id


async def _space(w: World) -> dict[str, Any]:
    """Two conversations (one of two messages), three documents (one masked), a profile."""
    first = await w.pro_writes("Résultats d'analyse (mai)", "Voici vos résultats.")
    await w.pro_writes("Re: Résultats", "Complément.", refs=str(first["Message-ID"]))
    await w.pro_writes("Rendez-vous", "À mardi.", attachments=[
        ("convocation.pdf", "application/pdf", PDF)])
    docs = {"bilan.txt": b"glycemie 5.5\n" * 50, "cr.pdf": PDF, "bilan-2.txt": b"autre"}
    ids = [await _file(w, "Bilan sanguin", docs["bilan.txt"], "bilan.txt", "text/plain"),
           await _file(w, "Compte rendu", PDF, "cr.pdf", "application/pdf",
                       Label.CPT_REND),
           await _file(w, "Bilan sanguin", b"autre", "bilan.txt", "text/plain")]
    await w.services.documents.set_masked(w.patient, w.patient.id, ids[2], True)
    h = {"X-CSRF-Token": (await (await w.client.get("/api/session")).json())["csrf"]}
    r = await w.client.post("/api/profile/allergies", headers=h, json={
        "substance": "Pénicilline", "reaction": "urticaire", "severity": "modérée"})
    assert r.status == 201, await r.text()
    return {"docs": docs}


async def test_zip_layout_and_contents(logged_in: World) -> None:
    w = logged_in
    space = await _space(w)
    r = await w.client.get("/api/export")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert re.fullmatch(r'attachment; filename="mon-espace-sante-export-\d{4}-\d{2}-\d{2}\.zip"',
                        r.headers["Content-Disposition"])
    body = await r.read()
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert zf.testzip() is None
    names = zf.namelist()

    # Messages: one folder per conversation (date + subject slug), numbered, exact bytes.
    emls = sorted(n for n in names if n.endswith(".eml"))
    assert len(emls) == 3
    assert any(re.fullmatch(r"messages/\d{4}-\d{2}-\d{2}-resultats-d-analyse-mai/001-"
                            r"\d{4}-\d{2}-\d{2}\.eml", n) for n in emls), emls
    assert any(n.split("/")[-1].startswith("002-") and "resultats-d-analyse-mai" in n
               for n in emls), emls
    assert any("rendez-vous" in n for n in emls), emls
    stored = await ExportQueries(w.services.db).messages_of(w.patient.id)
    exported = sorted(zf.read(n) for n in emls)
    expected = sorted([await w.services.store.read_raw(m.id) for m in stored])
    assert exported == expected  # the exact stored octets: what IMAP BODY[] serves
    for n in emls:
        assert zf.getinfo(n).compress_type == zipfile.ZIP_DEFLATED

    # Documents, their index (CSV and JSON), SHA-256 matching the files.
    index = json.loads(zf.read("documents/index.json"))["documents"]
    assert len(index) == 3
    for item in index:
        data = zf.read("documents/" + item["fichier"])
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert item["taille_octets"] == len(data)
        assert item["rubrique"] and item["auteur"] == "Dr Claire Martin"
    assert sorted(i["fichier"] for i in index) == ["bilan-2.txt", "bilan.txt", "cr.pdf"]
    assert [i["masque"] for i in index if i["fichier"] == "bilan-2.txt"] == [True]
    assert zf.read("documents/cr.pdf") == space["docs"]["cr.pdf"]
    assert zf.getinfo("documents/cr.pdf").compress_type == zipfile.ZIP_STORED
    rows = list(csv.reader(io.StringIO(zf.read("documents/index.csv").decode("utf-8-sig")),
                           delimiter=";"))
    assert rows[0][:3] == ["fichier", "titre", "rubrique"] and len(rows) == 4
    assert {r[8] for r in rows[1:]} == {i["sha256"] for i in index}

    # The profile as GET /api/profile gives it; the access log; the README.
    profile = await (await w.client.get("/api/profile")).json()
    assert json.loads(zf.read("profil/profil.json")) == profile
    log = list(csv.reader(io.StringIO(zf.read("journal-des-acces.csv").decode("utf-8-sig")),
                          delimiter=";"))
    assert log[0] == ["date", "action", "qui", "profession", "structure", "document"]
    assert "Masquage" in {r[1] for r in log[1:]} and "Ajout" in {r[1] for r in log[1:]}
    readme = zf.read("LISEZMOI.txt").decode()
    assert "Export réalisé le" in readme and ".eml" in readme and "3 messages" in readme


async def test_fhir_bundle_validates_and_points_at_the_files(logged_in: World) -> None:
    from fhir.resources.R4B.bundle import Bundle

    w = logged_in
    await _space(w)
    zf = zipfile.ZipFile(io.BytesIO(await (await w.client.get("/api/export")).read()))
    raw = zf.read("profil/bundle-fhir.json")
    bundle = Bundle.model_validate_json(raw)
    assert bundle.type == "collection"
    resources = [e["resource"] for e in json.loads(raw)["entry"]]
    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("Patient") == 1 and "AllergyIntolerance" in kinds
    refs = [r for r in resources if r["resourceType"] == "DocumentReference"]
    assert len(refs) == 3
    for r in refs:
        url = r["content"][0]["attachment"]["url"]
        assert url.startswith("documents/") and url in zf.namelist()
    assert "FHIR" in zf.read("LISEZMOI.txt").decode()


async def test_page_download_and_login_required(world: World) -> None:
    r = await world.client.get("/api/export")
    assert r.status == 401
    r = await world.client.get("/parametres/export/telecharger", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/connexion"
    await world.first_connection()
    await world.login()
    html = await (await world.client.get("/parametres/export")).text()
    assert "Télécharger mes données" in html and 'href="/parametres/export/telecharger"' in html
    r = await world.client.get("/parametres/export/telecharger")
    assert r.status == 200
    zf = zipfile.ZipFile(io.BytesIO(await r.read()))
    assert {"LISEZMOI.txt", "profil/profil.json", "documents/index.csv",
            "journal-des-acces.csv"} <= set(zf.namelist())


async def test_cli_export_matches(logged_in: World, tmp_path: Path) -> None:
    w = logged_in
    await _space(w)
    target = tmp_path / "export.zip"
    size = await export_to(w.services, INS[0], target)
    assert target.stat().st_size == size and (target.stat().st_mode & 0o777) == 0o600
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None
        assert len([n for n in zf.namelist() if n.endswith(".eml")]) == 3
        assert not (tmp_path / "export.zip.part").exists()
