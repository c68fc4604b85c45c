"""The data directory written by the last release without migrations (tests/fixtures/pre_alembic)
and the checks that its data survived an upgrade."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from mailserver.app import Services
from mailserver.cli.setup import init_data_dir
from tests.fixtures.pre_alembic.generate import HERE, expected_of

EXPECTED: dict[str, Any] = json.loads((HERE / "expected.json").read_text())


def copy_fixture(target: Path, *, keys_for_serving: bool = False) -> Path:
    """A private copy of the fixture's data dir (the committed one is never written); with
    ``keys_for_serving``, the TLS and DKIM keys it leaves out, from a new data dir."""
    shutil.copytree(HERE / "data", target)
    if keys_for_serving:
        fresh = target.with_name(target.name + "-keys")
        init_data_dir(fresh, "hopital.mssante.test")
        for name in ("tls", "dkim"):
            shutil.copytree(fresh / name, target / name)
    return target


def with_database_url(data_dir: Path, url: str) -> None:
    toml = data_dir / "mssante.toml"
    toml.write_text(toml.read_text().replace("[store]\n", f'[store]\ndatabase_url = "{url}"\n'))


async def assert_data_intact(s: Services) -> None:
    """Every message byte for byte (one from a blob), the documents' hashes, the profile, the
    lifecycle history: as the last release without migrations wrote them."""
    addresses = sorted({key.split("/")[0] for key in EXPECTED["messages"]})
    ids = EXPECTED["ids"]
    patient = next(a for a in addresses if a.startswith("2790"))
    doctor = next(a for a in addresses if a != patient)
    got = await expected_of(s, [doctor, patient], ids["patient"], ids["pending"])
    assert got == EXPECTED
    # The patients' conversation counts (the inbox's pages) were filled in by the upgrade.
    for account_id in (ids["patient"], ids["pending"]):
        convs = await s.conversations.list_for_patient(account_id)
        assert await s.conversations.count_for_patient(account_id) == len(convs)
    assert await s.conversations.count_for_patient(ids["patient"]) > 0
    blobs = [p for p in s.config.path(s.config.store.blob_dir).rglob("*") if p.is_file()]
    assert len(blobs) == 1  # the large message was read from its blob, not from its row


def _rows(sqlite_path: Path, md: MetaData) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(f"sqlite:///{sqlite_path}")
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in md.sorted_tables:
            out[table.name] = [
                {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None
                 else v for k, v in row.items()}
                for row in conn.execute(table.select()).mappings()]
    engine.dispose()
    return out


async def copy_into_postgres(sqlite_path: Path, url: str, md: MetaData) -> None:
    """Create ``md``'s tables in the (empty) PostgreSQL database at ``url`` the way the last
    release did (``create_all``, no ``alembic_version``) and copy every row of the SQLite
    fixture into them, sequences moved past the copied ids."""
    rows = _rows(sqlite_path, md)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            for table in md.sorted_tables:
                if rows[table.name]:
                    await conn.execute(table.insert(), rows[table.name])
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and pk[0].autoincrement in (True, "auto") and \
                        pk[0].type.python_type is int:
                    col = pk[0].name
                    seq = f"pg_get_serial_sequence('{table.name}', '{col}')"
                    top = f"COALESCE((SELECT max({col}) FROM {table.name}), 0) + 1"  # noqa: S608
                    await conn.execute(text(f"SELECT setval({seq}, {top}, false)"))
    finally:
        await engine.dispose()
