"""The archive of a large space, prepared in the background, in a real browser (Debian's
Chromium, headless, driven by Playwright) against the real server: the export page offers
"Préparer l'archive" → the request is acknowledged → the job runs and the patient is mailed →
the page offers the archive, which downloads as a ZIP holding the conversation's .eml.

Screenshots (desktop and phone widths) go to ``$ARTIFACTS_DIR/<test name>/``; axe-core checks
the three states of the page: no serious or critical violation."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import io
import json
import re
import ssl
import zipfile
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from mailserver.app import Services
from mailserver.config import Config
from mailserver.runtime import Runtime
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.e2e import test_webmail_browser as journey
from tests.e2e.test_documents_browser import _login, _no_horizontal_scroll
from tests.e2e.test_webmail_browser import (
    BROWSER_MARKS,
    CHROMIUM,
    CHROMIUM_ARGS,
    _axe,
    _pro_sends,
    _shots,
    async_playwright,
    run_jobs,
)

services = journey.services
server = journey.server
artifacts = journey.artifacts

pytestmark = BROWSER_MARKS


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    """Every space counts as large."""
    return dataclasses.replace(
        config, webmail=dataclasses.replace(config.webmail, secure_cookies=False),
        export=dataclasses.replace(config.export, background_threshold_mb=0))




async def test_prepared_archive_journey(server: Runtime, services: Services, config: Config,
                                        client_tls: ssl.SSLContext, artifacts: Path) -> None:
    pro = await services.directory.add_professional(
        rpps=RPPS[0], email=f"claire.martin@{DOMAIN}", name="Dr Claire Martin",
        profession="10", password=PASSWORD)
    patient, code = await services.directory.add_patient(ins=INS[0], name="Marie Dupont")
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
            await page.goto(f"{base}/parametres/export")
            await _axe(page, "export-preparer", report)
            await _no_horizontal_scroll(page)
            await _shots(page, artifacts, "01-preparer")
            await page.get_by_role("button", name="Préparer l'archive").click()
            await page.get_by_text("Votre demande est enregistrée.").wait_for()
            await _axe(page, "export-en-preparation", report)
            await _shots(page, artifacts, "02-en-preparation")
            await run_jobs(services, "prepare_export")
            await page.goto(f"{base}/parametres/export")
            await _axe(page, "export-prete", report)
            await _shots(page, artifacts, "03-prete")
            async with page.expect_download() as info:
                await page.get_by_role("link", name="Télécharger l'archive prête").click()
            download = await info.value
            saved = artifacts / download.suggested_filename
            await download.save_as(saved)
        finally:
            await browser.close()

    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as z:
        assert z.testzip() is None
        assert [n for n in z.namelist() if re.search(r"prise-de-sang/.*\.eml$", n)]
    subjects = [str(email.message_from_bytes(f.read_bytes(), policy=default_policy)["Subject"])
                for f in outbox.glob("*.eml")]
    assert "Votre archive est prête" in subjects, subjects
    (artifacts / "axe.json").write_text(json.dumps(report, indent=1))
    failing = {k: v for k, v in report.items() if v}
    assert not failing, failing
