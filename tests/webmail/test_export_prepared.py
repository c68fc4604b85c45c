"""The archive of a large space, prepared in the background: "Préparer l'archive" enqueues the
job, which writes the ZIP sealed under the account's key (no plaintext on disk) and mails the
patient a notice without health content; the page then offers the download (the same archive
as the streamed one) until ``ready_days`` are over, when the expiry deletes it. Closing makes
it unreadable; deleting the space deletes it."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailserver.config import Config
from mailserver.lifecycle import Actor
from mailserver.store import prepared_exports as rows
from tests.webmail.conftest import World


@pytest.fixture
def config(config: Config) -> Config:  # type: ignore[override]
    """Every space counts as large."""
    return dataclasses.replace(config, export=dataclasses.replace(
        config.export, background_threshold_mb=0, ready_days=7))


async def _page(w: World) -> str:
    return await (await w.client.get("/parametres/export")).text()


async def _prepare(w: World) -> None:
    r = await w.post("/parametres/export/preparer", {}, csrf_from="/parametres/export")
    assert r.status == 303 and r.headers["Location"] == "/parametres/export?info=demandee"
    page = await (await w.client.get("/parametres/export?info=demandee")).text()
    assert "Vous recevrez un courriel" in page and "en cours de préparation" in page
    assert await w.services.runner.run_due() >= 1


def _blob_path(w: World, key: str) -> Path:
    return w.services.config.path(w.services.config.store.blob_dir) / key[:2] / key[2:4] / key


async def _row(w: World) -> rows.PreparedRow | None:
    async with w.services.db.session() as s:
        return await rows.get_in(s, w.patient.id)


async def test_prepare_notify_download_expire(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Résultats de la prise de sang", "Hémoglobine normale.")
    page = await _page(w)
    assert "Préparer l'archive" in page and "/parametres/export/telecharger" not in page
    await _prepare(w)

    (notice,) = [m for m in w.outbox_messages() if "archive" in str(m["Subject"])]
    text = notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert notice["To"] == "marie@perso.example" and "http://webmail.test/parametres/export" \
        in text
    assert "Hémoglobine" not in text and "prise de sang" not in text.lower()

    page = await _page(w)
    assert "Télécharger l'archive prête" in page and "jusqu'au" in page
    row = await _row(w)
    assert row is not None and row.blob_key is not None
    sealed = _blob_path(w, row.blob_key).read_bytes()
    assert len(sealed) == row.size and b"LISEZMOI" not in sealed and b"PK" not in sealed[:8]

    r = await w.client.get("/parametres/export/archive")
    assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(await r.read()))
    assert zf.testzip() is None
    emls = [n for n in zf.namelist() if n.endswith(".eml")]
    assert len(emls) == 1 and b"moglobine normale" in zf.read(emls[0])
    streamed = zipfile.ZipFile(io.BytesIO(await (await w.client.get("/api/export")).read()))
    assert sorted(zf.namelist()) == sorted(streamed.namelist())
    assert zf.read(emls[0]) == streamed.read(emls[0])

    prepared = w.services.prepared_exports
    assert prepared is not None
    assert await prepared.expire_due(as_of=datetime.now(UTC) + timedelta(days=6)) == 0
    assert await prepared.expire_due(as_of=datetime.now(UTC) + timedelta(days=7, minutes=1)) \
        == 1
    assert await _row(w) is None and not _blob_path(w, row.blob_key).exists()
    r = await w.client.get("/parametres/export/archive", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/parametres/export"
    assert "Préparer l'archive" in await _page(w)


async def test_closing_hides_it_and_deletion_erases_it(logged_in: World) -> None:
    w = logged_in
    await w.pro_writes("Compte rendu", "Bonjour")
    await _prepare(w)
    row = await _row(w)
    assert row is not None and row.blob_key is not None
    prepared = w.services.prepared_exports
    assert prepared is not None
    await w.services.closing.close(w.patient.id, Actor.agent("A1"))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the key is in the archive now
        [piece async for piece in prepared.stream(w.patient)]
    await w.services.closing.request_deletion(w.patient.id, Actor.agent("A1"))
    assert await w.services.closing.erase_due(as_of=datetime.now(UTC) + timedelta(days=1))
    assert await _row(w) is None and not _blob_path(w, row.blob_key).exists()


async def test_login_csrf_and_a_second_request_while_preparing(world: World) -> None:
    r = await world.client.get("/parametres/export/archive", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/connexion"
    await world.first_connection()
    await world.login()
    r = await world.client.post("/parametres/export/preparer", allow_redirects=False)
    assert r.status == 403
    for _ in range(2):
        r = await world.post("/parametres/export/preparer", {},
                             csrf_from="/parametres/export")
        assert r.status == 303
    assert await world.services.jobs.pending_count("prepare_export") == 1
