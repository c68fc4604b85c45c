"""``mssante token issue/list/revoke``: a bearer token for software, stored as a hash only."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from dossier_bridge.models import ApiToken
from dossier_bridge.tokens import TokenRepository
from mailserver.app import open_services
from mailserver.cli import main
from mailserver.cli.common import load_config
from tests.conftest import DOMAIN, PASSWORD, RPPS, make_data_dir


def test_token_issue_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = make_data_dir(tmp_path / "data")
    address = f"logiciel@{DOMAIN}"

    async def setup() -> None:
        s = await open_services(load_config(data_dir), fast_passwords=True)
        try:
            await s.directory.add_professional(rpps=RPPS[0], email=address, name="Logiciel",
                                               profession="10", password=PASSWORD)
        finally:
            await s.close()

    asyncio.run(setup())
    assert main(["token", "issue", "--email", address, "--label", "DPI",
                 "--data-dir", str(data_dir)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mss_") and len(token) > 40

    async def check() -> tuple[int | None, list[str]]:
        s = await open_services(load_config(data_dir), fast_passwords=True)
        try:
            async with s.db.session() as session:
                hashes = list((await session.execute(select(ApiToken.token_hash))).scalars())
            return await TokenRepository(s.db).resolve(token), hashes
        finally:
            await s.close()

    account_id, hashes = asyncio.run(check())
    assert account_id is not None
    assert hashes == [hashlib.sha256(token.encode()).hexdigest()]  # never the token itself
    assert main(["token", "list", "--email", address, "--data-dir", str(data_dir)]) == 0
    assert "active\tDPI" in capsys.readouterr().out
    assert main(["token", "revoke", "1", "--data-dir", str(data_dir)]) == 0
    assert asyncio.run(check())[0] is None
    assert main(["token", "issue", "--email", f"nobody@{DOMAIN}",
                 "--data-dir", str(data_dir)]) == 2
