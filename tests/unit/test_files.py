"""mailserver.files.atomic_write: content, permissions, no temp file left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.files import atomic_write


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_private_file(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    atomic_write(target, b"secret")
    assert target.read_bytes() == b"secret"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_replaces_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old content, longer than the new one")
    atomic_write(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_exclusive_refuses_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "mss1.rsa.pem"
    atomic_write(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["mss1.rsa.pem"]


def test_missing_folder_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "absent" / "f", b"x")
    assert list(tmp_path.iterdir()) == []


@given(st.binary(max_size=200_000))
def test_any_content_round_trips(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    target = tmp_path_factory.mktemp("w") / "blob"
    atomic_write(target, data)
    assert target.read_bytes() == data
