"""End to end: a professional submits over SMTP (STARTTLS + AUTH), the job worker files the
documents, the MDN lands in the professional's INBOX; a failing filing is retried without
touching the message; the CLI lists and audits."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import update

from attachments.labels import Label
from mailserver.app import Services, open_services
from mailserver.cli import main as cli_main
from mailserver.reports.mdn import parse_mdn
from mailserver.runtime import Runtime
from mailserver.store.models import Job
from tests.attachments.corpus import Attachment, XdmDoc, make_cda, make_pdf
from tests.bridge.helpers import (
    XDM_HEADERS,
    deliver_stored,
    filer_of,
    message,
    patient,
    pro,
    store_of,
    xdm_attachment,
)
from tests.conftest import DOMAIN, INS, PASSWORD, make_config, make_data_dir


async def _inbox(s: Services, account_id: int) -> list[bytes]:
    folder = await s.store.get_folder(account_id, "INBOX")
    return [await s.store.read_raw(m.id) for m in await s.store.list_messages(folder.id)]


async def test_smtp_to_documents_with_receipt(runtime: Runtime, services: Services,
                                              client_tls: ssl.SSLContext) -> None:
    dr = await pro(services, "dr.martin")
    pt = await patient(services)
    raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML"),
                                   XdmDoc(make_cda("11502-2", title="Biologie").replace(
                                       b"DOC-42", b"DOC-43"), "DOC0002.XML", "11502-2", "10",
                                       title="Biologie")]),
                   Attachment(make_pdf("Compte rendu de consultation"), "cr.pdf",
                              "application", "pdf")],
                  sender=dr.address, to=pt.address,
                  headers={**XDM_HEADERS, "X-MSS-CODECDA": "11488-4,11502-2",
                           "Disposition-Notification-To": dr.address},
                  subject="XDM/1.0/DDM+CR DUPONT Marie 19790315")
    host, port = runtime.ports["submission"]
    await aiosmtplib.send(raw, sender=dr.address, recipients=[pt.address], hostname=host,
                          port=port, username=dr.address, password=PASSWORD, start_tls=True,
                          tls_context=client_tls)
    # The message is there before any filing.
    assert len(await _inbox(services, pt.id)) == 1
    assert await services.jobs.pending_count("file_documents") == 1
    assert await services.runner.run_due() >= 1
    assert await services.jobs.pending_count("file_documents") == 0
    store = store_of(services)
    docs = await store.list(pt, pt.id)
    assert sorted(d.label.value for d in docs) == ["BIOLOGIE", "CPT_REND", "CPT_REND"]
    assert all(d.author.get("rpps") for d in docs)
    # The MDN reached the professional's INBOX.
    mdns = [parse_mdn(m) for m in await _inbox(services, dr.id)]
    assert len(mdns) == 1 and mdns[0].disposition == "processed"
    assert mdns[0].error_code is None and mdns[0].final_recipient.endswith(pt.address)
    # Filing is in the access log; the professional reads with consent and is logged.
    assert [e.action for e in await store.access_log(pt, pt.id)] == ["file"] * 3
    await store.consents.set_treating_doctor(pt.id, dr)
    await store.read(dr, pt.id, docs[0].id)
    reads = await store.access_log(pt, pt.id, reads_only=True)
    assert [(e.actor_account_id, e.detail["name"]) for e in reads] == [(dr.id, dr.name)]
    assert (await store.verify_log(pt.id)).ok
    # The worker ran the job once; running again files nothing more and sends no second MDN.
    assert await services.runner.run_due() == 0
    assert len(await _inbox(services, dr.id)) == 1


async def test_failed_filing_is_retried_and_never_loses_the_message(
        services: Services, data_dir: Path) -> None:
    await pro(services, "dr.martin")
    pt = await patient(services)
    big = make_pdf("Compte rendu opératoire") + b"\n%" + b"y" * 300_000
    raw = message([Attachment(big, "cro.pdf", "application", "pdf")],
                  sender=f"dr.martin@{DOMAIN}")
    mid = await deliver_stored(services, pt, raw)
    from mailserver.store.jobs import Jobs

    async def enqueue(s):  # type: ignore[no-untyped-def]
        Jobs.enqueue_in(s, "file_documents", account_id=pt.id, message_id=mid)

    await services.db.write(enqueue)
    blobs = data_dir / "blobs"
    aside = data_dir / "blobs.aside"
    blobs.rename(aside)
    blobs.write_bytes(b"not a directory")  # the blob store now fails (even for root)
    try:
        await services.runner.run_due()
        assert await services.jobs.pending_count("file_documents") == 1  # retried later
        assert await store_of(services).list(pt, pt.id) == []
    finally:
        blobs.unlink()
        aside.rename(blobs)
    assert await services.store.read_raw(mid) == raw  # the message is untouched
    assert len(await _inbox(services, pt.id)) == 1

    async def due_now(s):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        await s.execute(update(Job).values(not_before=datetime.now(UTC)))

    await services.db.write(due_now)
    await services.runner.run_due()
    assert await services.jobs.pending_count("file_documents") == 0
    docs = await store_of(services).list(pt, pt.id)
    assert [(d.filename, d.label) for d in docs] == [("cro.pdf", Label.CPT_REND)]


def test_cli_list_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = make_data_dir(tmp_path / "data")

    async def setup() -> None:
        s = await open_services(make_config(data_dir), fast_passwords=True)
        try:
            await pro(s, "dr.martin")
            pt = await patient(s)
            raw = message([xdm_attachment([XdmDoc(make_cda(), "DOC0001.XML")])],
                          sender=f"dr.martin@{DOMAIN}")
            await filer_of(s).run(pt.id, await deliver_stored(s, pt, raw))
        finally:
            await s.close()

    asyncio.run(setup())
    assert cli_main(["documents", "list", "--data-dir", str(data_dir), "--ins", INS[0],
                     "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["label"], r["type_code"], r["author"]["rpps"], r["date"][:10]) for r in rows] == [
        ("CPT_REND", "11488-4", "99700218896", "2025-01-15")]
    assert cli_main(["documents", "list", "--data-dir", str(data_dir), "--ins", INS[0]]) == 0
    assert "Comptes rendus" in capsys.readouterr().out
    assert cli_main(["documents", "audit", "--data-dir", str(data_dir), "--ins", INS[0]]) == 0
    assert "Access log OK: 1 entries" in capsys.readouterr().out
    # Tamper with the database directly: the audit fails.
    import sqlite3

    db = sqlite3.connect(data_dir / "mssante.db")
    db.execute("UPDATE dossier_access_log SET action = 'read'")
    db.commit()
    db.close()
    assert cli_main(["documents", "audit", "--data-dir", str(data_dir), "--ins", INS[0]]) == 1
    assert "BROKEN at entry 1" in capsys.readouterr().out
