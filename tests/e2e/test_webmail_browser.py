"""The patient's whole journey in a real browser (Debian's Chromium, headless, driven by
Playwright), against the real server on ephemeral ports:

first connection → login with the emailed code → read a message a professional sent over SMTP
→ reply with an attachment → a reply posted after the session expired is given back and sent
after a new login → the professional fetches the replies over IMAP.

Screenshots of every step (desktop and phone widths) go to ``$ARTIFACTS_DIR`` (default
``<repo>/artifacts/<test name>/``). axe-core (``npm install`` in ``tests/e2e``) checks the main
pages: no serious or critical violation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import imaplib
import os
import re
import shutil
import smtplib
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from mailserver.app import Services, open_services
from mailserver.config import Config, ListenConfig
from mailserver.runtime import Runtime, start_runtime
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]

if async_playwright is None:
    pytestmark = [pytestmark, pytest.mark.skip(reason="playwright (PyPI) is not installed")]
elif not Path(CHROMIUM).exists():
    pytestmark = [pytestmark, pytest.mark.skip(
        reason="Debian chromium is not installed (apt-get install chromium)")]

BROWSER_MARKS = pytestmark
"""The marks of every browser journey (e2e, skipped without Playwright or Debian's Chromium)."""


async def run_jobs(services: Services, kind: str, *, tries: int = 200,
                   pause: float = 0.05) -> None:
    """Run due jobs (the runtime's runner may have claimed them first) until no ``kind`` job
    is pending."""
    for _ in range(tries):
        await services.runner.run_due()
        if await services.jobs.pending_count(kind) == 0:
            return
        await asyncio.sleep(pause)
    raise AssertionError(f"the {kind} job did not run")

NIR = INS[0][:13]
LOGIN = "marie.dupont"
SECRET = "Tulipe-Orange-42!"  # noqa: S105 - test credential
CONTACT = "marie@perso.example"
WIDTHS = {"bureau": (1280, 900), "telephone": (390, 844)}


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    return dataclasses.replace(config, webmail=dataclasses.replace(
        config.webmail, secure_cookies=False))


@pytest.fixture
async def services(config: Config) -> AsyncIterator[Services]:  # type: ignore[override]
    s = await open_services(config, fast_passwords=True)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def server(config: Config, services: Services) -> AsyncIterator[Runtime]:
    import importlib.util

    imap = "127.0.0.1:0" if importlib.util.find_spec("mailserver.imap.server") else ""
    rt = await start_runtime(config, ListenConfig(
        submission="127.0.0.1:0", smtp="127.0.0.1:0", imap=imap, http="127.0.0.1:0"),
        services=services)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    base = os.environ.get("ARTIFACTS_DIR")
    path = (Path(base) / request.node.name) if base else REPO / "artifacts" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _outbox_code(outbox: Path) -> str:
    for p in sorted(outbox.glob("*.eml"), reverse=True):
        msg = email.message_from_bytes(p.read_bytes(), policy=default_policy)
        if "code" in str(msg["Subject"]).lower():
            m = re.search(r"\b(\d{6})\b", msg.get_body(  # type: ignore[union-attr]
                preferencelist=("plain",)).get_content())
            if m:
                return m.group(1)
    raise AssertionError("no one-time code in the outbox")


def _pro_sends(port: int, ctx: ssl.SSLContext, sender: str, to: str) -> str:
    msg = EmailMessage()
    msg["From"] = f"Dr Claire Martin <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Résultats de votre prise de sang"
    msg["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    msg["Date"] = email.utils.formatdate()
    msg["Disposition-Notification-To"] = sender
    msg.set_content("Bonjour Madame Dupont,\n\nVos résultats sont normaux. Le compte rendu est "
                    "joint.\n\nDr Martin")
    msg.add_alternative(
        "<p>Bonjour Madame Dupont,</p><p>Vos résultats sont <strong>normaux</strong>. "
        'Le compte rendu est joint.</p><p><img src="https://tracker.example/p.gif" '
        'alt="logo du laboratoire"></p><p>Dr Martin – <a href="https://labo.example/'
        '?utm_source=mail&amp;page=infos">informations</a></p>'
        "<script>alert('xss')</script>"
        # Wide content must scroll inside the message, not widen a phone's page; an image
        # whose cid: part is missing is dropped by the sanitiser (axe image-alt).
        "<pre>" + "valeur;" * 60 + "</pre><table><tr>" + "<td>colonne_large</td>" * 30
        + '</tr></table><img src="cid:absente@labo">', subtype="html")
    msg.add_attachment(b"%PDF-1.4 compte rendu", maintype="application", subtype="pdf",
                       filename="compte-rendu.pdf")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(sender, PASSWORD)
        smtp.send_message(msg)
    return str(msg["Message-ID"])


def _imap_fetch_all(port: int, ctx: ssl.SSLContext, user: str) -> list[EmailMessage]:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.starttls(ssl_context=ctx)
        imap.login(user, PASSWORD)
        imap.select("INBOX")
        _, data = imap.uid("SEARCH", "ALL")
        out = []
        for uid in data[0].split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            msg = email.message_from_bytes(raw, policy=default_policy)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        imap.logout()
        return out
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass


async def _expire_sessions(services: Services) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from webmail.models import WebSession

    async def op(s: Any) -> None:
        await s.execute(update(WebSession).values(
            last_seen=datetime.now(UTC) - timedelta(hours=2)))

    await services.db.write(op)


async def _shots(page: Page, folder: Path, name: str) -> None:
    """Screenshot the page at desktop and phone widths."""
    for label, (w, h) in WIDTHS.items():
        await page.set_viewport_size({"width": w, "height": h})
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size({"width": WIDTHS["bureau"][0], "height": WIDTHS["bureau"][1]})


async def _axe(page: Page, name: str, report: dict[str, Any]) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `npm install` in tests/e2e")
    # Evaluated through the DevTools protocol: our CSP (no inline script) stays in force.
    await page.evaluate(AXE.read_text() + "\n;true")
    result = await page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    assert result["passes"], "axe-core ran no check"  # the engine really ran
    bad = [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    report[name] = bad


async def test_patient_journey(server: Runtime, services: Services, config: Config,
                               client_tls: ssl.SSLContext, artifacts: Path) -> None:
    pro = await services.directory.add_professional(
        rpps=RPPS[0], email=f"claire.martin@{DOMAIN}", name="Dr Claire Martin",
        profession="10", password=PASSWORD)
    patient, code = await services.directory.add_patient(
        ins=INS[0], name="Marie Dupont", contact={"email": "ancienne@perso.example"})
    outbox = config.path(config.webmail.outbox_dir)
    host, port = server.ports["http"]
    base = f"http://{host}:{port}"
    axe_report: dict[str, Any] = {}

    assert async_playwright is not None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900},
                                          locale="fr-FR")
            # 1. First connection.
            await page.goto(f"{base}/premiere-connexion")
            await _axe(page, "premiere-connexion", axe_report)
            await page.get_by_label("Code provisoire").fill(code)
            await page.get_by_label("Numéro de sécurité sociale").fill(NIR)
            await page.get_by_label("Numéro de série de votre carte Vitale").fill(
                "1234567890123")
            await _shots(page, artifacts, "01-premiere-connexion")
            await page.get_by_role("button", name="Continuer").click()
            await page.wait_for_url(re.compile(r".*/premiere-connexion/identifiants$"))
            await page.get_by_label("Identifiant personnel").fill(LOGIN)
            await page.get_by_label("Mot de passe", exact=False).first.fill(SECRET)
            await page.get_by_label("Confirmer le mot de passe").fill(SECRET)
            await page.get_by_label("Adresse électronique").fill(CONTACT)
            await _axe(page, "identifiants", axe_report)
            await _shots(page, artifacts, "02-identifiants")
            await page.get_by_role("button", name="Créer mon accès").click()
            await page.wait_for_url(re.compile(r".*/connexion\?info=bienvenue$"))
            await _axe(page, "connexion", axe_report)
            await _shots(page, artifacts, "03-connexion")

            # 2. Login with the emailed one-time code.
            await page.get_by_label("Identifiant").fill(LOGIN)
            await page.get_by_label("Mot de passe").fill(SECRET)
            await page.get_by_role("button", name="Se connecter").click()
            await page.wait_for_url(re.compile(r".*/connexion/code$"))
            await _axe(page, "code", axe_report)
            await _shots(page, artifacts, "04-code")
            await page.get_by_label("Code reçu par courriel").fill(_outbox_code(outbox))
            await page.get_by_role("button", name="Valider").click()
            await page.wait_for_url(re.compile(r".*/conversations$"))
            await _axe(page, "conversations-vide", axe_report)

            # 3. A professional writes over SMTP submission (STARTTLS + AUTH).
            msgid = await asyncio.to_thread(_pro_sends, server.ports["submission"][1],
                                            client_tls, pro.address, patient.address)
            await page.reload()
            await page.get_by_text("Résultats de votre prise de sang").wait_for()
            assert "1 non lu" in await page.content()
            await _axe(page, "conversations", axe_report)
            await _shots(page, artifacts, "05-conversations")

            # 4. Read it (sanitised, remote image blocked, attachment listed).
            await page.get_by_text("Résultats de votre prise de sang").click()
            await page.get_by_text("Vos résultats sont").wait_for()
            html = await page.content()
            assert "tracker.example" not in html and "alert('xss')" not in html
            assert "compte-rendu.pdf" in html
            assert patient.address in await page.get_by_role("banner").inner_text()
            await _axe(page, "conversation", axe_report)
            await _shots(page, artifacts, "06-conversation")
            await page.set_viewport_size({"width": 360, "height": 740})
            widths = await page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], widths  # no horizontal scrolling of the page
            await page.set_viewport_size({"width": 1280, "height": 900})

            # 5. Reply with an attachment.
            await page.get_by_label("Votre message").fill("Merci docteur, bien reçu.")
            await page.get_by_label("Joindre des fichiers").set_input_files(files=[{
                "name": "ordonnance-scan.pdf", "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4 scan du patient"}])
            await page.get_by_role("button", name="Envoyer la réponse").click()
            await page.get_by_text("Votre réponse a été envoyée.").wait_for()
            assert await page.evaluate("document.activeElement.id") == "confirmation"
            await _axe(page, "conversation-apres-reponse", axe_report)
            await _shots(page, artifacts, "07-reponse-envoyee")

            # 6. A reply typed while the session expired is given back, then sent.
            await _expire_sessions(services)
            await page.get_by_label("Votre message").fill("Une question sur le dosage.")
            await page.get_by_role("button", name="Envoyer la réponse").click()
            await page.get_by_text("Votre session a expiré").first.wait_for()
            assert "Une question sur le dosage." in await page.get_by_label(
                "Votre réponse (non envoyée)").input_value()
            await _axe(page, "reponse-non-envoyee", axe_report)
            await _shots(page, artifacts, "08-session-expiree")
            await page.get_by_role("link", name="Me reconnecter").click()
            await page.get_by_label("Identifiant").fill(LOGIN)
            await page.get_by_label("Mot de passe").fill(SECRET)
            await page.get_by_role("button", name="Se connecter").click()
            await page.wait_for_url(re.compile(r".*/connexion/code$"))
            await page.get_by_label("Code reçu par courriel").fill(_outbox_code(outbox))
            await page.get_by_role("button", name="Valider").click()
            await page.wait_for_url(re.compile(r".*/conversations$"))
            await page.get_by_role("link", name="la reprendre et l'envoyer").click()
            assert await page.get_by_label("Votre message").input_value() == \
                "Une question sur le dosage."
            await page.get_by_role("button", name="Envoyer la réponse").click()
            await page.get_by_text("Votre réponse a été envoyée.").wait_for()
        finally:
            await browser.close()

    # 7. The professional fetches the replies (and the read receipt) over IMAP.
    if "imap" in server.ports:
        inbox = await asyncio.to_thread(_imap_fetch_all, server.ports["imap"][1], client_tls,
                                        pro.address)
    else:  # IMAP not built: read the professional's INBOX from the store instead.
        folder = await services.store.get_folder(pro.id, "INBOX")
        inbox = [email.message_from_bytes(await services.store.read_raw(m.id),
                                          policy=default_policy)  # type: ignore[misc]
                 for m in await services.store.list_messages(folder.id)]
    replies = [m for m in inbox if m.get_content_type() != "multipart/report"]
    # Read receipts (ours); the dossier bridge may add its own "processed" receipt.
    receipts = [m for m in inbox if m.get_content_type() == "multipart/report"
                and b"displayed" in m.as_bytes()]
    (artifacts / "inbox.txt").write_text(repr([
        (str(m["From"]), str(m["Subject"]), m.get_content_type()) for m in inbox]))
    assert len(replies) == 2 and len(receipts) == 1
    assert any("dosage" in m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
               for m in replies)
    reply = next(m for m in replies if list(m.iter_attachments()))
    assert patient.address in str(reply["From"])
    assert reply["In-Reply-To"] == msgid
    assert msgid in str(reply["References"])
    atts = list(reply.iter_attachments())
    assert [a.get_filename() for a in atts] == ["ordonnance-scan.pdf"]
    assert atts[0].get_content() == b"%PDF-1.4 scan du patient"
    assert b"displayed" in receipts[0].as_bytes()

    (artifacts / "axe.json").write_text(__import__("json").dumps(axe_report, indent=1))
    failing = {k: v for k, v in axe_report.items() if v}
    assert not failing, failing
