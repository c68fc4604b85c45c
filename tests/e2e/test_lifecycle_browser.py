"""The account's lifecycle in a real browser (Debian's Chromium, headless, driven by
Playwright), against the real server on ephemeral ports:

a pending patient, created by the announcement campaign with a provisional code, connects with
code + NIR + Vitale serial and opposes (confirmation page; mail to them is refused) → the 3422
line reissues a code (the directory call of ``mssante accounts reissue-code``) and the patient
activates through the first connection → a professional writes → Paramètres → "Télécharger mes
données" (the ZIP holds the conversation's .eml) → "Fermer mon espace santé" → the login says
the space is closed → a new code and the first connection reopen it: the old conversation is
back, under the same identifier.

Screenshots (desktop and phone widths) go to ``$ARTIFACTS_DIR/<test name>/`` (default
``<repo>/artifacts/<test name>/``), with the downloaded ZIP's listing and axe's report;
axe-core checks every new page: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import smtplib
import ssl
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mailserver.app import Services
from mailserver.config import Config
from mailserver.directory.campaign import Patient, run_campaign
from mailserver.lifecycle import paris_date
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.e2e import test_webmail_browser as journey
from tests.e2e.test_documents_browser import _no_horizontal_scroll
from tests.e2e.test_webmail_browser import (
    BROWSER_MARKS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTACT,
    LOGIN,
    NIR,
    SECRET,
    _axe,
    _outbox_code,
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

VITALE = "1234567890123"
SUBJECT = "Résultats de votre prise de sang"


async def _campaign(services: Services) -> tuple[int, str, str]:
    """The announcement campaign creates the pending account: (id, address, letter's code)."""
    row = Patient(ins=INS[0], family_name="DUPONT", given_names="Marie",
                  birth_date=date(1979, 3, 15), postal=("1 rue des Lilas", "44000 NANTES"),
                  email=None)
    result = await run_campaign(services.directory, [(2, row)],
                                notified_on=paris_date(datetime.now(UTC)))
    (created,) = result.created
    assert created.account.status == "pending"
    return created.account.id, created.account.address, created.code


async def _letter_code(page: Page, base: str, code: str) -> None:
    """Step 1 of the first connection: the letter's code, the NIR, the Vitale serial."""
    await page.goto(f"{base}/premiere-connexion")
    await page.get_by_label("Code provisoire").fill(code)
    await page.get_by_label("Numéro de sécurité sociale").fill(NIR)
    await page.get_by_label("Numéro de série de votre carte Vitale").fill(VITALE)
    await page.get_by_role("button", name="Continuer").click()


async def _oppose(page: Page, base: str, code: str, shots: Path,
                  report: dict[str, Any]) -> None:
    await _letter_code(page, base, code)
    await page.wait_for_url(re.compile(r".*/premiere-connexion/choix$"))
    assert "s'ouvrira automatiquement le" in await page.content()
    await _axe(page, "choix-premiere-connexion", report)
    await _no_horizontal_scroll(page)
    await _shots(page, shots, "01-choix")
    await page.get_by_role("link", name="Je m'oppose à l'ouverture de ma messagerie "
                                        "santé").click()
    await page.wait_for_url(re.compile(r".*/premiere-connexion/opposition$"))
    await _axe(page, "opposition-confirmation", report)
    await _shots(page, shots, "02-opposition-confirmation")
    await page.get_by_role("button", name="Confirmer mon opposition").click()
    await page.get_by_text("Votre opposition est enregistrée.").wait_for()
    assert "Aucun identifiant ni mot de passe n'a été créé" in await page.content()
    await _axe(page, "opposition-enregistree", report)
    await _shots(page, shots, "03-opposition-enregistree")


async def _credentials_and_login(page: Page, outbox: Path) -> None:
    """Step 2 of the first connection, then the login with the emailed one-time code."""
    await page.wait_for_url(re.compile(r".*/premiere-connexion/identifiants$"))
    await page.get_by_label("Identifiant personnel").fill(LOGIN)
    await page.get_by_label("Mot de passe", exact=False).first.fill(SECRET)
    await page.get_by_label("Confirmer le mot de passe").fill(SECRET)
    await page.get_by_label("Adresse électronique").fill(CONTACT)
    await page.get_by_role("button", name="Créer mon accès").click()
    await page.wait_for_url(re.compile(r".*/connexion\?info=bienvenue$"))
    await page.get_by_label("Identifiant").fill(LOGIN)
    await page.get_by_label("Mot de passe").fill(SECRET)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(re.compile(r".*/connexion/code$"))
    await page.get_by_label("Code reçu par courriel").fill(_outbox_code(outbox))
    await page.get_by_role("button", name="Valider").click()
    await page.wait_for_url(re.compile(r".*/conversations$"))


async def _activate(page: Page, base: str, code: str, outbox: Path, shots: Path) -> None:
    """An opposed patient activates with a reissued code: the choice, then the first
    connection."""
    await _letter_code(page, base, code)
    await page.wait_for_url(re.compile(r".*/premiere-connexion/choix$"))
    assert "Vous vous étiez opposé(e)" in await page.content()
    assert await page.get_by_role("link", name=re.compile("Je m'oppose")).count() == 0
    await _shots(page, shots, "04-choix-apres-opposition")
    await page.get_by_role("link", name="Activer ma messagerie maintenant").click()
    await _credentials_and_login(page, outbox)


async def _menu(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name=name, exact=True).click()


async def _export(page: Page, shots: Path, report: dict[str, Any]) -> list[str]:
    """Paramètres → "Télécharger mes données": the ZIP; its names."""
    await _menu(page, "Paramètres")
    await page.wait_for_url(re.compile(r".*/parametres$"))
    await _axe(page, "parametres", report)
    await _no_horizontal_scroll(page)
    await _shots(page, shots, "06-parametres")
    await page.get_by_role("link", name="Télécharger mes données").click()
    await page.wait_for_url(re.compile(r".*/parametres/export$"))
    await _axe(page, "export", report)
    await _shots(page, shots, "07-export")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Télécharger le fichier ZIP").click()
    download = await info.value
    assert re.fullmatch(r"[\w.-]+\.zip", download.suggested_filename), \
        download.suggested_filename
    saved = shots / download.suggested_filename
    await download.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as z:
        assert z.testzip() is None
        names = z.namelist()
        emls = [n for n in names if n.endswith(".eml")]
        assert emls, names
        texts = [z.read(n) for n in emls]
    assert any(b"Vos r=C3=A9sultats sont normaux" in t or "Vos résultats sont normaux"
               .encode() in t for t in texts), emls
    (shots / "export-contenu.txt").write_text("\n".join(names))
    return names


async def _close(page: Page, shots: Path, report: dict[str, Any]) -> None:
    await _menu(page, "Paramètres")
    await page.get_by_role("link", name="Fermer mon espace santé").click()
    await page.wait_for_url(re.compile(r".*/parametres/fermer$"))
    await _axe(page, "fermer", report)
    await _no_horizontal_scroll(page)
    await _shots(page, shots, "08-fermer")
    await page.get_by_label("Votre mot de passe").fill(SECRET)
    await page.get_by_label("Je confirme vouloir fermer mon espace santé").check()
    await page.get_by_role("button", name="Fermer mon espace santé").click()
    await page.get_by_text("Votre espace santé est fermé.").wait_for()
    assert "archivés pendant 10 ans" in await page.content()
    await _axe(page, "fermer-confirme", report)
    await _shots(page, shots, "09-ferme")


async def _closed_login(page: Page, base: str, shots: Path, report: dict[str, Any]) -> None:
    await page.goto(f"{base}/conversations")
    await page.wait_for_url(re.compile(r".*/connexion$"))  # the session ended with the space
    await page.get_by_label("Identifiant").fill(LOGIN)
    await page.get_by_label("Mot de passe").fill(SECRET)
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_text("Votre espace santé est fermé.").wait_for()
    text = await page.content()
    assert "archivés pendant 10 ans" in text and "3422" in text
    assert re.search(r"/connexion$", page.url), page.url
    await _axe(page, "connexion-espace-ferme", report)
    await _shots(page, shots, "10-connexion-espace-ferme")


def _refused(port: int, ctx: ssl.SSLContext, sender: str, to: str) -> bool:
    try:
        _pro_sends(port, ctx, sender, to)
    except smtplib.SMTPRecipientsRefused as exc:
        return all(code == 550 for code, _text in exc.recipients.values())
    return False


async def test_lifecycle_journey(server: Runtime, services: Services, config: Config,
                                 client_tls: ssl.SSLContext, artifacts: Path) -> None:
    pro = await services.directory.add_professional(
        rpps=RPPS[0], email=f"claire.martin@{DOMAIN}", name="Dr Claire Martin",
        profession="10", password=PASSWORD)
    patient_id, address, code = await _campaign(services)
    outbox = config.path(config.webmail.outbox_dir)
    host, port = server.ports["http"]
    base = f"http://{host}:{port}"
    submission = server.ports["submission"][1]
    report: dict[str, Any] = {}

    assert async_playwright is not None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900},
                                          locale="fr-FR", accept_downloads=True)
            # 1. Opposition online; an opposed patient receives no mail.
            await _oppose(page, base, code, artifacts, report)
            assert (await services.directory.get(patient_id)).status == "opposed"
            assert await asyncio.to_thread(_refused, submission, client_tls, pro.address,
                                           address)

            # 2. Activation later: the 3422 line reissues a code.
            code = await services.directory.new_provisional_code(patient_id)
            await _activate(page, base, code, outbox, artifacts)
            await asyncio.to_thread(_pro_sends, submission, client_tls, pro.address, address)
            await page.reload()
            await page.get_by_text(SUBJECT).wait_for()
            await _shots(page, artifacts, "05-conversations")

            # 3. Export, then closing.
            await _export(page, artifacts, report)
            await _close(page, artifacts, report)
            assert (await services.directory.get(patient_id)).status == "closed"
            await _closed_login(page, base, artifacts, report)

            # 4. Reopening: a new code, the first connection, the old conversation is back.
            code = await services.directory.new_provisional_code(patient_id)
            await _letter_code(page, base, code)
            await _credentials_and_login(page, outbox)
            await page.get_by_text(SUBJECT).click()
            await page.get_by_text("Vos résultats sont").wait_for()
            await _shots(page, artifacts, "11-conversation-retrouvee")
        finally:
            await browser.close()

    life = await services.directory.lifecycle(patient_id)
    events = [h.event for h in life.history]
    (artifacts / "historique.txt").write_text("\n".join(events))
    assert events == ["oppose", "activate", "close", "reactivate"], events
    (artifacts / "axe.json").write_text(json.dumps(report, indent=1))
    failing = {k: v for k, v in report.items() if v}
    assert not failing, failing
