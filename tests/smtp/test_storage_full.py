"""Submission on a full disk answers 452 4.3.1 (RFC 3463 "mail system full"), not the general
451 4.3.0, and works again once space is freed (issue 9, item 21, submission half).

The data directory lives on a small tmpfs that the test fills: the errors are the real ENOSPC
of the blob store and SQLite's real "database or disk is full". Needs the right to mount
(root in the test container); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailserver.app import Services, open_services
from mailserver.config import ListenConfig
from mailserver.runtime import Runtime, start_runtime
from tests.conftest import PG_URL, RPPS, add_pro, make_config, make_data_dir
from tests.smtp.conftest import message, submission


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A data directory on a 16 MB tmpfs."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],  # noqa: S603,S607
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield make_data_dir(mnt / "data")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # noqa: S603,S607


@pytest.fixture
async def full_runtime(small_disk: Path, database_url: str
                       ) -> AsyncIterator[tuple[Runtime, Services, Path]]:
    data_dir = small_disk
    config = make_config(data_dir, database_url)
    services = await open_services(config, fast_passwords=True)
    rt = await start_runtime(config, ListenConfig(submission="127.0.0.1:0"), services=services)
    try:
        yield rt, services, data_dir
    finally:
        await rt.close()
        await services.close()


def _fill(path: Path) -> None:
    """Write ``path`` until the file system is full (down to the last byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


async def _inbox_count(services: Services, account_id: int) -> int:
    folder = await services.store.get_folder(account_id, "INBOX")
    return len(await services.store.list_messages(folder.id))


@pytest.mark.parametrize("size", ["inline", "blob"])
async def test_full_disk_answers_452_4_3_1(full_runtime: tuple[Runtime, Services, Path],
                                           client_tls: ssl.SSLContext, size: str) -> None:
    runtime, services, data_dir = full_runtime
    if size == "inline" and PG_URL:
        pytest.skip("the database is not on the small disk with PostgreSQL")
    a = await add_pro(services, "dr.a")
    b = await add_pro(services, "dr.b", RPPS[1])
    body = "x" * (services.config.store.inline_max * 2 if size == "blob" else 100)
    filler = data_dir / "filler"
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))

    def send(text: str) -> tuple[int, bytes]:
        with submission(runtime, ctx, a.address) as c:
            try:
                c.sendmail(a.address, [b.address], message(a.address, b.address, body=text))
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error
            return 250, b""

    await asyncio.to_thread(_fill, filler)
    code, text = await asyncio.to_thread(send, body)
    assert (code, text[:5]) == (452, b"4.3.1"), text
    assert await _inbox_count(services, b.id) == 0

    filler.unlink()
    assert (await asyncio.to_thread(send, body + "again"))[0] == 250
    assert await _inbox_count(services, b.id) == 1
