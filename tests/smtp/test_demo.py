"""The demo is seeded with realistic conversations, through the real delivery path."""

from __future__ import annotations

from pathlib import Path

import pytest

from attachments.labels import Label
from mailserver.app import open_services
from mailserver.cli.serve import DEMO_DOMAIN, populate_demo
from tests.bridge.helpers import store_of
from tests.conftest import make_config, make_data_dir


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path / "demo", DEMO_DOMAIN)


async def test_fresh_demo_has_conversations_and_a_filed_lab_result(
        demo_dir: Path, database_url: str) -> None:
    config = make_config(demo_dir, database_url)
    s = await open_services(config, fast_passwords=True)
    try:
        codes = await populate_demo(s, seed=True)
        assert [name for name, _, _ in codes] == ["Marie DUPONT", "Jean DURAND"]
        marie = await s.directory.lookup(codes[0][1])
        jean = await s.directory.lookup(codes[1][1])
        assert marie is not None and jean is not None

        conversations = await s.conversations.list_for_patient(marie.id)
        assert len(conversations) == 3
        closed = [c for c in conversations if c.closed]
        assert len(closed) == 1 and closed[0].started_by == f"luc.moreau@{DEMO_DOMAIN}"
        assert len(await s.conversations.list_for_patient(jean.id)) == 1

        # The bridge files the XDM lab result under "Résultats de biologie".
        while await s.runner.run_due():
            pass
        docs = await store_of(s).list(marie, marie.id)
        assert [d.label for d in docs] == [Label.BIOLOGIE]
        assert docs[0].author.get("rpps") == "10003244273"

        # A second start (not fresh) adds nothing.
        await populate_demo(s, seed=False)
        assert len(await s.conversations.list_for_patient(marie.id)) == 3
    finally:
        await s.close()
