"""The patient's Documents space in a real browser (Debian's Chromium, headless, driven by
Playwright), with professionals reading over ``/fhir`` through real HTTP, against the real
server on ephemeral ports:

a laboratory sends a lab result (XDM + CDA) by SMTP submission, the filing job files it → a
consented nurse finds and reads it over ``/fhir`` (bearer token) → the patient finds it under
"Résultats de biologie", adds a scanned prescription (PDF upload), masks the lab result, sees the
nurse's read in "Qui a consulté mes documents ?", declares a treating doctor and revokes the
nurse's consent → the nurse's next search returns nothing, the treating doctor (HTTP Basic)
still finds and retrieves the masked document.

Screenshots (desktop and phone widths) go to ``$ARTIFACTS_DIR/<test name>/`` (default
``<repo>/artifacts/<test name>/``); axe-core checks every new page: no serious or critical
violation.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from dossier_bridge.tokens import TokenRepository
from mailserver.app import Services
from mailserver.config import Config
from mailserver.runtime import Runtime
from tests.attachments.corpus import XdmDoc, make_cda, make_pdf
from tests.bridge.helpers import XDM_HEADERS, message, xdm_attachment
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.e2e import test_webmail_browser as journey
from tests.e2e.test_webmail_browser import (
    BROWSER_MARKS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LOGIN,
    NIR,
    SECRET,
    _axe,
    _outbox_code,
    _shots,
    async_playwright,
    run_jobs,
)

# The real server and the artifacts folder, as the mail journey starts them (fixtures by name).
config = journey.config
services = journey.services
server = journey.server
artifacts = journey.artifacts

pytestmark = BROWSER_MARKS

STRUCTURE = "11750000001"
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
PRESCRIPTION = make_pdf("Ordonnance : kinésithérapie, 10 séances")

if async_playwright is not None:
    from playwright.async_api import Page


async def _lab_sends(port: int, ctx: ssl.SSLContext, sender: str, to: str) -> None:
    cda = make_cda("11502-2", title="Bilan sanguin du 15 janvier").replace(
        b'<component><nonXMLBody><text mediaType="text/plain">corps</text></nonXMLBody>'
        b'</component>',
        "<component><structuredBody><component><section><title>Hématologie</title><text>"
        "Hémoglobine 13,5 g/dL (normale)</text></section></component></structuredBody>"
        "</component>".encode())
    raw = message([xdm_attachment([XdmDoc(cda, "DOC0001.XML", "11502-2", "10",
                                          title="Bilan sanguin du 15 janvier")])],
                  sender=sender, to=to, headers=XDM_HEADERS,
                  subject="XDM/1.0/DDM+BIO DUPONT Marie 19790315")
    await aiosmtplib.send(raw, sender=sender, recipients=[to], hostname="127.0.0.1", port=port,
                          username=sender, password=PASSWORD, start_tls=True, tls_context=ctx)


async def _search(http: aiohttp.ClientSession, base: str, auth: str) -> tuple[int, Any]:
    async with http.get(f"{base}/fhir/DocumentReference", headers={"Authorization": auth},
                        params={"patient.identifier": f"{INS_SYSTEM}|{INS[0]}",
                                "status": "current"}) as r:
        return r.status, await r.json(content_type=None)


async def _retrieve(http: aiohttp.ClientSession, base: str, auth: str, url: str
                    ) -> tuple[int, bytes]:
    url = url if url.startswith("http") else f"{base}/fhir/{url.lstrip('/')}"
    async with http.get(url, headers={"Authorization": auth}) as r:
        return r.status, await r.read()


def _titles(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"].get("description") or e["resource"]["content"][0]["attachment"].get(
        "title", ""): e["resource"] for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == "match"}


async def _login(page: Page, base: str, code: str, outbox: Path) -> None:
    await page.goto(f"{base}/premiere-connexion")
    await page.get_by_label("Code provisoire").fill(code)
    await page.get_by_label("Numéro de sécurité sociale").fill(NIR)
    await page.get_by_label("Numéro de série de votre carte Vitale").fill("1234567890123")
    await page.get_by_role("button", name="Continuer").click()
    await page.wait_for_url(re.compile(r".*/premiere-connexion/identifiants$"))
    await page.get_by_label("Identifiant personnel").fill(LOGIN)
    await page.get_by_label("Mot de passe", exact=False).first.fill(SECRET)
    await page.get_by_label("Confirmer le mot de passe").fill(SECRET)
    await page.get_by_label("Adresse électronique").fill("marie@perso.example")
    await page.get_by_role("button", name="Créer mon accès").click()
    await page.wait_for_url(re.compile(r".*/connexion\?info=bienvenue$"))
    await page.get_by_label("Identifiant").fill(LOGIN)
    await page.get_by_label("Mot de passe").fill(SECRET)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(re.compile(r".*/connexion/code$"))
    await page.get_by_label("Code reçu par courriel").fill(_outbox_code(outbox))
    await page.get_by_role("button", name="Valider").click()
    await page.wait_for_url(re.compile(r".*/conversations$"))


async def _no_horizontal_scroll(page: Page) -> None:
    """At a small phone's width the page (menu included) does not scroll sideways."""
    await page.set_viewport_size({"width": 360, "height": 740})
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert widths[0] <= widths[1], widths




async def test_documents_journey(server: Runtime, services: Services, config: Config,
                                 client_tls: ssl.SSLContext, artifacts: Path) -> None:
    lab = await services.directory.add_professional(
        rpps=RPPS[0], email=f"labo.durand@{DOMAIN}", name="Dr Paul Durand",
        profession="10", password=PASSWORD)
    nurse = await services.directory.add_professional(
        rpps=RPPS[1], email=f"ines.blanc@{DOMAIN}", name="Inès Blanc", profession="60",
        password=PASSWORD, structure_id=STRUCTURE)
    doctor = await services.directory.add_professional(
        rpps=RPPS[2], email=f"claire.martin@{DOMAIN}", name="Dr Claire Martin",
        profession="10", password=PASSWORD)
    patient, code = await services.directory.add_patient(
        ins=INS[0], name="Marie Dupont", contact={"email": "ancienne@perso.example"})
    await services.documents.consents.grant(patient.id, "structure", STRUCTURE)
    outbox = config.path(config.webmail.outbox_dir)
    host, port = server.ports["http"]
    base = f"http://{host}:{port}"
    nurse_auth = f"Bearer {await TokenRepository(services.db).issue(nurse.id, 'e2e')}"
    doctor_auth = "Basic " + base64.b64encode(f"{doctor.address}:{PASSWORD}".encode()).decode()
    axe_report: dict[str, Any] = {}
    preview: dict[str, Any] = {}

    # 1. The laboratory sends the result over SMTP submission; the filing job files it.
    await _lab_sends(server.ports["submission"][1], client_tls, lab.address, patient.address)
    await run_jobs(services, "file_documents", tries=100, pause=0.1)

    async with aiohttp.ClientSession() as http:
        # 2. The consented nurse finds it and reads it over /fhir (ITI-67 then ITI-68).
        status, bundle = await _search(http, base, nurse_auth)
        assert status == 200, bundle
        found = _titles(bundle)
        assert "Bilan sanguin du 15 janvier" in found, found
        lab_ref = found["Bilan sanguin du 15 janvier"]
        status, body = await _retrieve(http, base, nurse_auth,
                                       lab_ref["content"][0]["attachment"]["url"])
        assert status == 200 and b"ClinicalDocument" in body

        assert async_playwright is not None
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900},
                                              locale="fr-FR")
                await _login(page, base, code, outbox)

                # 3. The patient finds the lab result under "Résultats de biologie".
                await page.get_by_role("link", name="Mes documents", exact=True).click()
                await page.wait_for_url(re.compile(r".*/documents$"))
                await _axe(page, "documents", axe_report)
                await _no_horizontal_scroll(page)
                await _shots(page, artifacts, "01-documents")
                await page.get_by_role("navigation", name="Rubriques").get_by_role(
                    "link", name="Résultats de biologie").click()
                await page.wait_for_url(re.compile(r".*/documents\?label=BIOLOGIE$"))
                await page.get_by_role("link", name="Bilan sanguin du 15 janvier").click()
                await page.get_by_role("heading", name="Hématologie").wait_for()
                assert "Hémoglobine 13,5 g/dL" in await page.content()
                await _axe(page, "document-cda", axe_report)
                await _shots(page, artifacts, "02-resultat-biologie")
                lab_url = page.url

                # 4. The patient adds a scanned prescription (PDF upload).
                await page.get_by_role("link", name="Mes documents", exact=True).click()
                await page.get_by_role("link", name="Ajouter un document").click()
                await page.wait_for_url(re.compile(r".*/documents/ajouter$"))
                await _axe(page, "ajouter", axe_report)
                await page.get_by_label("Fichier").set_input_files(files=[{
                    "name": "ordonnance-kine.pdf", "mimeType": "application/pdf",
                    "buffer": PRESCRIPTION}])
                await page.get_by_label("Titre").fill("Ordonnance de kinésithérapie")
                await page.get_by_label("Date du document").fill("2025-02-03")
                await page.get_by_label("Rubrique").select_option(label="Ordonnances et soins")
                await _shots(page, artifacts, "03-ajouter")
                await page.get_by_role("button", name="Ajouter").click()
                await page.get_by_text("Votre document a été ajouté.").wait_for()
                await page.get_by_role("heading", name="Ordonnance de kinésithérapie",
                                       level=1).wait_for()
                # A PDF: no frame (Chromium refuses a PDF in a sandboxed frame and shows an
                # error page there); the download link, and the browser's viewer in a tab.
                assert await page.locator("iframe").count() == 0
                assert await page.get_by_role("link", name="Télécharger le document").count()
                async with page.context.expect_page() as opened:
                    await page.get_by_role("link", name=re.compile(
                        "ouvrez-le dans l'afficheur")).click()
                viewer = await opened.value
                await viewer.wait_for_load_state()
                for _ in range(50):
                    if any(f.url.startswith("chrome-extension://") for f in viewer.frames):
                        break
                    await viewer.wait_for_timeout(100)
                preview["viewer_frames"] = [f.url for f in viewer.frames]
                preview["ok"] = any(f.url.startswith("chrome-extension://")
                                    for f in viewer.frames)
                await viewer.wait_for_timeout(500)
                await viewer.screenshot(path=str(artifacts / "04b-ordonnance-pdf-onglet.png"))
                await viewer.close()
                await _axe(page, "document-pdf", axe_report)
                await _no_horizontal_scroll(page)
                await _shots(page, artifacts, "04-ordonnance-ajoutee")
                async with http.get(f"{base}/documents/1/contenu", allow_redirects=False) as r:
                    assert r.status in (303, 401, 403, 404)  # no session: nothing served

                # 5. The patient masks the lab result.
                await page.goto(lab_url)
                await page.get_by_role("button",
                                       name="Masquer ce document aux professionnels").click()
                await page.get_by_text("Le document est masqué").first.wait_for()
                assert "Votre médecin traitant le voit toujours" in await page.content()
                await _axe(page, "document-masque", axe_report)
                await _shots(page, artifacts, "05-masque")

                # 6. "Qui a consulté mes documents ?" shows the nurse's read.
                await page.get_by_role("link", name="Qui a consulté mes documents ?").click()
                await page.wait_for_url(re.compile(r".*/documents/historique$"))
                table = page.get_by_role("table")
                read_row = table.get_by_role("row").filter(has_text="Inès Blanc")
                await read_row.first.wait_for()
                row_text = await read_row.first.inner_text()
                assert "Infirmier" in row_text and STRUCTURE in row_text, row_text
                assert "Bilan sanguin du 15 janvier" in row_text, row_text
                assert "complet et intact" in await page.content()
                await _axe(page, "historique", axe_report)
                await _no_horizontal_scroll(page)
                masking = await table.get_by_role("row").filter(has_text="Masquage").first \
                    .inner_text()
                assert "Bilan sanguin du 15 janvier" in masking, masking
                await _shots(page, artifacts, "06-historique")

                # 7. Consents: declare the treating doctor, revoke the nurse's structure.
                await page.get_by_role("link", name="Mes autorisations").click()
                await page.wait_for_url(re.compile(r".*/consentements$"))
                await _axe(page, "autorisations", axe_report)
                await page.get_by_label(re.compile("Adresse de messagerie sécurisée")).fill(
                    doctor.address)
                await page.get_by_role("button", name="Déclarer mon médecin traitant").click()
                await page.get_by_text("Votre médecin traitant a été enregistré.").wait_for()
                assert "Dr Claire Martin" in await page.content()
                await _shots(page, artifacts, "07-autorisations")
                await page.get_by_role("button", name=re.compile(
                    "Retirer l'autorisation")).click()
                await page.get_by_text("L'autorisation a été retirée.").wait_for()
                assert "Vous n'avez autorisé aucune équipe" in await page.content()
                await _axe(page, "autorisations-retiree", axe_report)
                await _shots(page, artifacts, "08-autorisation-retiree")
            finally:
                await browser.close()

        # 8. The nurse's next search returns nothing; the treating doctor still finds the
        # masked lab result (flagged MASQUE_PS) and retrieves it, and the prescription.
        status, bundle = await _search(http, base, nurse_auth)
        assert status == 403 and not bundle.get("entry"), bundle
        status, body = await _retrieve(http, base, nurse_auth,
                                       lab_ref["content"][0]["attachment"]["url"])
        assert status == 403
        status, bundle = await _search(http, base, doctor_auth)
        assert status == 200, bundle
        found = _titles(bundle)
        assert set(found) >= {"Bilan sanguin du 15 janvier", "Ordonnance de kinésithérapie"}
        masked = found["Bilan sanguin du 15 janvier"]
        assert any(c["code"] == "MASQUE_PS" for s in masked["securityLabel"]
                   for c in s["coding"])
        status, body = await _retrieve(http, base, doctor_auth,
                                       masked["content"][0]["attachment"]["url"])
        assert status == 200 and b"ClinicalDocument" in body

    (artifacts / "apercu-pdf.json").write_text(json.dumps(preview, indent=1))
    (artifacts / "axe.json").write_text(json.dumps(axe_report, indent=1))
    failing = {k: v for k, v in axe_report.items() if v}
    assert not failing, failing
    assert preview.get("ok"), preview

