"""The models and the head revision agree (what keeps a later table or column honest), the
revisions are forward-only, a new revision is generated from the models, and ``mssante init``
creates the schema in the database it is given."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Integer, String, Table

from mailserver import migrations
from mailserver.config import load
from mailserver.errors import ValidationError
from mailserver.migrations import alembic_config, head, schema_status, upgrade
from mailserver.migrations.authoring import new_revision
from mailserver.schema import metadata
from mailserver.store.db import migration_engine
from tests.conftest import DOMAIN, PG_URL


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata()))


async def _diff(url: str) -> list[Any]:
    engine = migration_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_differences)
    finally:
        await engine.dispose()


def _url(database_url: str, tmp_path: Path) -> str:
    return database_url or f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


async def test_models_agree_with_the_head_revision(database_url: str, tmp_path: Path) -> None:
    url = _url(database_url, tmp_path)
    done = await upgrade(url)
    assert (done.before, done.after) == ("empty", head())
    assert await _diff(url) == [], "a model changed without a revision: mssante migrate --new"


def test_one_head_and_every_revision_is_forward_only() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "merge the heads (alembic merge) or re-parent one"
    for rev in script.walk_revisions():
        spec = importlib.util.spec_from_file_location(f"rev_{rev.revision}", rev.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with pytest.raises(NotImplementedError, match="forward-only"):
            module.downgrade()


async def test_a_new_table_gets_a_generated_revision(tmp_path: Path) -> None:
    versions = tmp_path / "versions"  # a copy: the package's own folder is never written
    shutil.copytree(Path(migrations.__file__).parent / "versions", versions)
    assert await new_revision("nothing", versions=versions) is None  # models agree: no file
    table = Table("migration_probe", metadata(), Column("id", Integer, primary_key=True),
                  Column("label", String(40), nullable=True, index=True))
    try:
        path = await new_revision("add a probe table", versions=versions)
        assert path is not None and path.parent == versions
        assert path.name == f"v{int(head()) + 1:04d}_add_a_probe_table.py"
        source = path.read_text()
        assert "op.create_table('migration_probe'" in source and "NotImplementedError" in source
        url = f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}"
        assert (await upgrade(url, versions=versions)).after == head(versions) != head()
        assert await _diff(url) == []
    finally:
        metadata().remove(table)


async def test_init_refuses_a_url_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="--database-url must start with"):
        await asyncio.to_thread(_init, tmp_path / "d", "mysql://root@localhost/mssante")
    assert not (tmp_path / "d").exists()


def _init(data_dir: Path, url: str) -> None:
    from mailserver.cli.setup import init_data_dir

    init_data_dir(data_dir, DOMAIN, database_url=url)


@pytest.mark.skipif(not PG_URL, reason="needs MSSANTE_TEST_DATABASE_URL (PostgreSQL)")
async def test_init_creates_the_schema_in_postgres(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(_init, tmp_path / "data", database_url)
    config = load(tmp_path / "data" / "mssante.toml")
    assert config.database_url == database_url
    assert not (tmp_path / "data" / "mssante.db").exists()
    assert (await schema_status(database_url)).current == head()
    assert await _diff(database_url) == []
    with pytest.raises(ValidationError, match="already holds a schema"):
        await asyncio.to_thread(_init, tmp_path / "other", database_url)
