"""The orphan blob sweep removes blob files no row names once older than the margin, and never
a blob a row names: a mailbox's, a document's, or a closed (archived) account's."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mailserver.app import Services, blob_sweep
from mailserver.cli import main
from mailserver.lifecycle import Actor
from mailserver.store.blobs import LocalBlobStore, new_blob_key
from tests.conftest import INS, add_patient, add_pro

HOUR = 3600.0


def _age(root: Path, seconds: float) -> None:
    """Make every file under ``root`` look ``seconds`` old."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


async def _large(services: Services, account_id: int, tag: str) -> int:
    raw = f"Subject: {tag}\r\n\r\n".encode() + tag.encode() * (200 * 1024 // len(tag))
    assert await services.store.append(account_id, "INBOX", raw)
    folder = await services.store.get_folder(account_id, "INBOX")
    return (await services.store.list_messages(folder.id))[-1].id


async def test_sweep_removes_old_orphans_only(services: Services) -> None:
    blobs = services.store.blobs
    assert isinstance(blobs, LocalBlobStore)
    pro = await add_pro(services)
    patient = await add_patient(services, INS[0])
    kept = await _large(services, pro.id, "kept")
    archived = await _large(services, patient.id, "archived")
    archived_raw = await services.store.read_raw(archived)
    await services.closing.close(patient.id, Actor.agent("test"))
    old_orphan, young_orphan = new_blob_key(), new_blob_key()
    await blobs.put(old_orphan, b"sealed bytes of a delivery that never committed")
    cut_short = blobs.root / old_orphan[:2] / old_orphan[2:4] / f".{old_orphan}.x1.tmp"
    cut_short.write_bytes(b"half a blob")
    _age(blobs.root, 2 * HOUR)
    await blobs.put(young_orphan, b"a delivery in progress")  # younger than the margin
    named = set(blobs.files_older_than(time.time() - HOUR)) - {old_orphan}
    assert len(named) == 2  # the professional's message and the closed account's

    sweep = blob_sweep(services)
    assert sweep.margin == HOUR
    dry = await sweep.run_once(dry_run=True)
    assert (dry.orphans, dry.temp) == ((old_orphan,), 1)
    assert cut_short.exists()

    done = await sweep.run_once()
    assert (done.old, done.orphans, done.temp) == (3, (old_orphan,), 1)
    left = set(blobs.files_older_than(time.time()))
    assert left == named | {young_orphan}
    assert not cut_short.exists()
    assert b"kept" in await services.store.read_raw(kept)
    await services.closing.reactivate(patient.id, Actor.agent("test"))
    assert await services.store.read_raw(archived) == archived_raw
    assert (await sweep.run_once()).orphans == ()


def test_blobs_sweep_command(data_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    orphan = data_dir / "blobs" / "ab" / "cd" / ("abcd" + "0" * 28)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    _age(data_dir / "blobs", 2 * HOUR)
    assert main(["blobs", "sweep", "--dry-run", "--data-dir", str(data_dir)]) == 0
    assert "would remove 1 " in capsys.readouterr().out and orphan.exists()
    assert main(["blobs", "sweep", "--data-dir", str(data_dir)]) == 0
    assert "removed 1 " in capsys.readouterr().out and not orphan.exists()


def test_every_blob_column_is_listed_for_the_sweep_and_the_backup() -> None:
    """A table naming blob files that the list forgets would have its blobs swept as orphans
    and left out of backups: every ``blob_key``/``storage_key`` column must be listed."""
    from mailserver.schema import metadata
    from mailserver.store.snapshot import BLOB_REFERENCES

    columns = {(table.name, column.name) for table in metadata().sorted_tables
               for column in table.columns if column.name in ("blob_key", "storage_key")}
    assert columns, "no blob column found: the test looks at the wrong metadata"
    assert columns <= set(BLOB_REFERENCES)
