"""The access log's head row: removing the last entries (truncation) is detected, not only a
gap in the middle."""

from __future__ import annotations

from sqlalchemy import delete, select, text, update

from attachments.labels import Label
from dossier_bridge.models import LOG_HEADS_TABLE, DossierLogEntry, DossierLogHead
from mailserver.app import Services, open_services
from mailserver.config import Config
from tests.bridge.helpers import patient, pro, store_of
from tests.premigration import make_pre_migration

STRUCTURE = "11750000001"


async def _log_of_five(services: Services) -> tuple[int, int]:
    store = store_of(services)
    pt = await patient(services)
    nurse = await pro(services, "inf.a", "60", structure_id=STRUCTURE)
    doc = await store.upload(pt, pt.id, b"%PDF-1.4 bilan", filename="bilan.pdf",
                             mime_type="application/pdf", title="Bilan",
                             label=Label.BIOLOGIE)
    await store.consents.grant(pt.id, "structure", STRUCTURE)
    for _ in range(3):
        await store.read(nurse, pt.id, doc.document_id)
    assert len(await store.log_entries(pt.id)) == 5
    return pt.id, doc.document_id


async def test_head_row_follows_each_append(services: Services) -> None:
    pid, _ = await _log_of_five(services)
    report = await store_of(services).verify_log(pid)
    assert report.ok and report.entries == 5, report.problems
    async with services.db.session() as s:
        head = await s.get(DossierLogHead, pid)
    assert head is not None and head.seq == 5 and head.entry_hash == report.head


async def test_removing_the_last_entries_is_detected(services: Services) -> None:
    pid, _ = await _log_of_five(services)
    async with services.db.session() as s:
        await s.execute(delete(DossierLogEntry).where(
            DossierLogEntry.patient_account_id == pid, DossierLogEntry.seq >= 4))
        await s.commit()
    report = await store_of(services).verify_log(pid)
    assert not report.ok
    assert report.first_bad_seq == 4
    assert any("removed at the end" in p for p in report.problems)


async def test_rewinding_the_head_to_an_earlier_entry_is_detected(services: Services) -> None:
    pid, _ = await _log_of_five(services)
    async with services.db.session() as s:
        third = (await s.execute(select(DossierLogEntry.entry_hash).where(
            DossierLogEntry.patient_account_id == pid, DossierLogEntry.seq == 3))).scalar_one()
        await s.execute(delete(DossierLogEntry).where(
            DossierLogEntry.patient_account_id == pid, DossierLogEntry.seq >= 4))
        await s.execute(update(DossierLogHead).where(DossierLogHead.patient_account_id == pid)
                        .values(seq=3, entry_hash=third))
        await s.commit()
    report = await store_of(services).verify_log(pid)
    assert not report.ok
    assert any("authentication code" in p for p in report.problems)


async def test_deleting_the_head_row_is_detected(services: Services) -> None:
    pid, _ = await _log_of_five(services)
    async with services.db.session() as s:
        await s.execute(delete(DossierLogHead).where(DossierLogHead.patient_account_id == pid))
        await s.commit()
    assert not (await store_of(services).verify_log(pid)).ok


async def test_logs_from_before_head_rows_are_anchored_once(services: Services,
                                                             config: Config) -> None:
    pid, _ = await _log_of_five(services)
    # A database from before head rows (and before migrations): no heads table at all.
    async with services.db.engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {LOG_HEADS_TABLE}"))
        await make_pre_migration(conn)
    upgraded = await open_services(config, fast_passwords=True, migrate=True)
    try:
        report = await upgraded.documents.verify_log(pid)
        assert report.ok and report.entries == 5, report.problems
        # Anchoring is a one-off: a head row deleted later is tampering, not an old database.
        async with upgraded.db.session() as s:
            await s.execute(delete(DossierLogHead).where(DossierLogHead.patient_account_id == pid))
            await s.commit()
    finally:
        await upgraded.close()
    again = await open_services(config, fast_passwords=True)
    try:
        report = await again.documents.verify_log(pid)
        assert not report.ok and any("head is missing" in p for p in report.problems)
    finally:
        await again.close()
