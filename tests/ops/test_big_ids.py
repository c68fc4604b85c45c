"""Ids past 2^31 on PostgreSQL (revision 0004): with every sequence moved beyond int4, an
account is created, a message delivered, read back and audited, and every row it wrote has
its 64-bit id (int4 columns or sequences would fail the INSERT, or stop the sequence)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mailserver.app import Services
from mailserver.migrations.versions.v0004_64_bit_ids import ID_COLUMNS
from tests.conftest import PG_URL, add_patient, add_pro
from tests.smtp.conftest import message

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL")

BEYOND = 2**31 + 1000
GROWING = ("accounts", "folders", "messages", "conversations", "conversation_parties",
           "jobs", "audit_events")


async def _scalar(services: Services, sql: str) -> int:
    async with services.db.session() as s:
        return int((await s.execute(text(sql))).scalar_one())


async def test_ids_beyond_int4_are_stored_and_read(services: Services) -> None:
    async with services.db.engine.begin() as conn:
        for table in GROWING:
            await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"{BEYOND})"))
    doctor = await add_pro(services, "dr.martin")
    patient = await add_patient(services)
    assert doctor.id > 2**31 and patient.id > 2**31
    raw = message(doctor.address, patient.address, body="Vos résultats")
    await services.delivery.submit_as(doctor, [patient.address], raw)
    inbox = await services.store.get_folder(patient.id, "INBOX")
    (info,) = await services.store.list_messages(inbox.id)
    assert inbox.id > 2**31 and info.id > 2**31
    assert info.conversation_id is not None and info.conversation_id > 2**31
    assert await services.store.read_raw(info.id) == raw
    await services.audit.flush()
    low = "SELECT count(*) FROM audit_events WHERE id <= 2147483647 OR account_id <= 2147483647"
    assert await _scalar(services, "SELECT count(*) FROM audit_events") > 0
    assert await _scalar(services, low) == 0
    assert await _scalar(services, "SELECT min(id) FROM jobs") > 2**31


async def test_every_id_column_and_sequence_is_bigint(services: Services) -> None:
    async with services.db.session() as s:
        types = {(t, c): typ for t, c, typ in (await s.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'"))).all()}
        sequences = set((await s.execute(text(
            "SELECT data_type FROM information_schema.sequences"))).scalars())
    assert {types[t, c] for t, cols in ID_COLUMNS.items() for c in cols} == {"bigint"}
    assert sequences == {"bigint"}
