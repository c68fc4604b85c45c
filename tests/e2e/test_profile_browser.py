"""The medical profile in a real browser (Debian's Chromium, headless, driven by Playwright),
against the real server on ephemeral ports:

a professional writes to the patient over SMTP submission → the patient fills each of the 9
rubrics of "Mon profil médical" through the pages (no script needed), enters five blood
pressure pairs and sees their chart with its table → downloads the synthesis PDF → files it in
Documents and finds it under "Ma santé en résumé" → attaches it to a reply in one step → the
professional fetches the reply over IMAP (STARTTLS) with the synthesis as a PDF attachment.

Screenshots (desktop and phone widths) go to ``$ARTIFACTS_DIR/<test name>/`` (default
``<repo>/artifacts/<test name>/``), with the downloaded PDF and axe's report; axe-core checks
every new page: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from mailserver.app import Services
from mailserver.config import Config
from mailserver.lifecycle import paris_date
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.e2e import test_webmail_browser as journey
from tests.e2e.test_documents_browser import _login, _no_horizontal_scroll
from tests.e2e.test_webmail_browser import (
    BROWSER_MARKS,
    CHROMIUM,
    CHROMIUM_ARGS,
    _axe,
    _imap_fetch_all,
    _pro_sends,
    _shots,
    async_playwright,
)

# The real server and the artifacts folder, as the mail journey starts them (fixtures by name).
config = journey.config
services = journey.services
server = journey.server
artifacts = journey.artifacts

pytestmark = BROWSER_MARKS

if async_playwright is not None:
    from playwright.async_api import Page

TODAY = paris_date(datetime.now(UTC))
SYNTHESIS = f"synthese-profil-medical-{TODAY.isoformat()}.pdf"


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


# One entry per rubric: (slug, kind link or None, {field: value}, text shown afterwards).
ENTRIES: list[tuple[str, str | None, dict[str, str], str]] = [
    ("maladies", None, {"condition": "Asthme", "since": "2010-05-01", "status": "active"},
     "Asthme"),
    ("historique-soins", None, {"date": _day(30), "kind": "consultation",
                                "professional": "Dr Claire Martin"}, "Dr Claire Martin"),
    ("entourage-volontes", "Volontés et droits",
     {"text": "Je souhaite être soignée à domicile si possible."}, "soignée à domicile"),
    ("allergies", None, {"substance": "Pénicilline", "reaction": "urticaire",
                         "severity": "modérée"}, "Pénicilline"),
    ("traitements", None, {"medicine": "Ventoline", "dose": "2 bouffées",
                           "frequency": "si besoin"}, "Ventoline"),
    ("vaccinations", None, {"vaccine": "DTP", "date": "2020-03-15", "dose_number": "3"},
     "DTP"),
    ("hospitalisations", None, {"date": "2015-06-10", "establishment": "CHU de Nantes",
                                "procedure": "Appendicectomie"}, "Appendicectomie"),
    ("mesures", "Poids", {"date": _day(1), "value": "64,5"}, "64,5"),
    ("antecedents-familiaux", None, {"relative": "mere", "condition": "Diabète de type 2",
                                     "age_at_onset": "55"}, "Diabète de type 2"),
]
PRESSURES = [(20, 128, 82), (15, 131, 84), (10, 125, 80), (5, 135, 86), (2, 122, 79)]


async def _fill(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f"#champ-{name}")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)


async def _add(page: Page, base: str, slug: str, kind: str | None,
               values: dict[str, str]) -> None:
    await page.goto(f"{base}/profil/{slug}")
    if kind is not None:
        await page.get_by_role("link", name=kind, exact=True).click()
    await _fill(page, values)
    await page.get_by_role("button", name="Ajouter", exact=True).click()
    await page.get_by_text("L'information a été ajoutée à votre profil médical.").wait_for()


async def _fill_rubrics(page: Page, base: str, shots: Path, report: dict[str, Any]) -> None:
    for slug, kind, values, shown in ENTRIES:
        await _add(page, base, slug, kind, values)
        assert shown in await page.content(), slug
        await _axe(page, f"rubrique-{slug}", report)
    await _shots(page, shots, "02-rubrique-remplie")


async def _pressures(page: Page, base: str, shots: Path, report: dict[str, Any]) -> None:
    for days_ago, systolic, diastolic in PRESSURES:
        await _add(page, base, "mesures", "Tension artérielle", {
            "date": _day(days_ago), "systolic": str(systolic), "diastolic": str(diastolic)})
    await page.goto(f"{base}/profil/mesures?periode=3m#graphiques")
    chart = page.get_by_role("img", name=re.compile(r"^Tension artérielle, 5 mesures"))
    await chart.wait_for()
    assert await chart.evaluate("img => img.complete && img.naturalWidth > 0")
    table = page.get_by_role("table", name="Tension artérielle : les valeurs du graphique")
    rows = await table.locator("tbody tr").all_inner_texts()
    assert len(rows) == 5 and all("Vous" in r for r in rows), rows
    assert "122/79" in rows[-1]
    await _axe(page, "mesures-graphique", report)
    await _no_horizontal_scroll(page)
    await _shots(page, shots, "03-mesures-graphique")


def _pdf_text(data: bytes) -> str:
    return " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(data)).pages)


async def _download(page: Page, base: str, shots: Path, report: dict[str, Any]) -> None:
    await page.goto(f"{base}/profil")
    await _axe(page, "profil", report)
    await _shots(page, shots, "04-profil")
    async with page.expect_download() as info:
        await page.get_by_role("link", name=re.compile("Télécharger la synthèse")).click()
    download = await info.value
    assert download.suggested_filename == SYNTHESIS
    saved = shots / SYNTHESIS
    await download.save_as(saved)
    text = _pdf_text(saved.read_bytes())
    for _, _, _, shown in ENTRIES:
        assert shown in text, (shown, text[:500])
    assert "122/79 mmHg" in text and "Marie DUPONT" in text


async def _file(page: Page, base: str, shots: Path, report: dict[str, Any]) -> None:
    await page.goto(f"{base}/profil")
    await page.get_by_role("button", name="Enregistrer dans mes documents").click()
    await page.get_by_text("a été enregistrée dans « Ma santé en résumé »").wait_for()
    title = f"Synthèse de mon profil médical du {TODAY.strftime('%d/%m/%Y')}"
    await page.get_by_role("navigation", name="Rubriques").get_by_role(
        "link", name="Ma santé en résumé").click()
    await page.get_by_text(title).first.wait_for()
    await _axe(page, "documents-synthese", report)
    await _shots(page, shots, "05-documents-synthese")


async def _reply(page: Page, shots: Path, report: dict[str, Any]) -> None:
    await page.get_by_role("link", name="Mes conversations", exact=True).click()
    await page.get_by_text("Résultats de votre prise de sang").click()
    await page.get_by_label("Votre message").fill("Voici la synthèse de mon profil médical.")
    await page.get_by_label("Joindre la synthèse de mon profil médical").check()
    await _axe(page, "conversation-synthese", report)
    await _shots(page, shots, "06-reponse-avec-synthese")
    await page.get_by_role("button", name="Envoyer la réponse").click()
    await page.get_by_text("Votre réponse a été envoyée.").wait_for()
    await _shots(page, shots, "07-reponse-envoyee")


async def test_profile_journey(server: Runtime, services: Services, config: Config,
                               client_tls: ssl.SSLContext, artifacts: Path) -> None:
    pro = await services.directory.add_professional(
        rpps=RPPS[0], email=f"claire.martin@{DOMAIN}", name="Dr Claire Martin",
        profession="10", password=PASSWORD)
    patient, code = await services.directory.add_patient(
        ins=INS[0], name="Marie Dupont", contact={"email": "ancienne@perso.example"})
    outbox = config.path(config.webmail.outbox_dir)
    host, port = server.ports["http"]
    base = f"http://{host}:{port}"
    report: dict[str, Any] = {}
    await asyncio.to_thread(_pro_sends, server.ports["submission"][1], client_tls,
                            pro.address, patient.address)

    assert async_playwright is not None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900},
                                          locale="fr-FR", accept_downloads=True)
            await _login(page, base, code, outbox)
            await page.get_by_role("link", name="Mon profil médical").click()
            await page.wait_for_url(re.compile(r".*/profil$"))
            await _shots(page, artifacts, "01-profil-vide")
            await _fill_rubrics(page, base, artifacts, report)
            await _pressures(page, base, artifacts, report)
            await _download(page, base, artifacts, report)
            await _file(page, base, artifacts, report)
            await _reply(page, artifacts, report)
        finally:
            await browser.close()

    inbox = await asyncio.to_thread(_imap_fetch_all, server.ports["imap"][1], client_tls,
                                    pro.address)
    with_pdf = [m for m in inbox if any(a.get_filename() == SYNTHESIS
                                        for a in m.iter_attachments())]
    (artifacts / "inbox.txt").write_text(repr([
        (str(m["From"]), str(m["Subject"]), m.get_content_type()) for m in inbox]))
    assert len(with_pdf) == 1, [m["Subject"] for m in inbox]
    assert patient.address in str(with_pdf[0]["From"])
    att = next(a for a in with_pdf[0].iter_attachments() if a.get_filename() == SYNTHESIS)
    assert att.get_content_type() == "application/pdf"
    assert "Pénicilline" in _pdf_text(att.get_content())

    (artifacts / "axe.json").write_text(json.dumps(report, indent=1))
    failing = {k: v for k, v in report.items() if v}
    assert not failing, failing


