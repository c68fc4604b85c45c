"""Pure helpers behind the submission checks of issue 9: author fields read strictly, control
characters escaped in logs, disk-full errors recognised, the postmaster setting validated."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from mailserver.config import from_dict
from mailserver.errors import ConfigError
from mailserver.headers import raw_fields, strict_addresses
from mailserver.logs import escape_controls
from mailserver.store.db import is_storage_full

NAMES = frozenset({"from", "sender"})


def test_raw_fields_unfold_by_removing_line_breaks_only() -> None:
    raw = b"From: a@b.test\r\n\tfoo\r\nSubject: s\r\n\r\nFrom: body@x.test\r\n"
    assert raw_fields(raw, NAMES) == {"from": [" a@b.test\tfoo"], "sender": []}


def test_raw_fields_count_every_spelling() -> None:
    raw = b"FROM: a@b.test\r\nX: y\rfrom :c@d.test\nSender: e@f.test\r\n\r\n"
    got = raw_fields(raw, NAMES)
    assert got["from"] == [" a@b.test", "c@d.test"] and got["sender"] == [" e@f.test"]


@pytest.mark.parametrize("value,expected", [
    ("a@b.test", ("a@b.test",)),
    ("Dr. A <a@b.test>", ("a@b.test",)),
    ('"A, B" <a@b.test>, c@d.test', ("a@b.test", "c@d.test")),
    ("a@b.test\tfoo", None),
    ("a@b.test <c@d.test>", None),
    ("a", None),
    ("x <a@b.test>, y", None),
    ("undisclosed:;", ()),
], ids=["plain", "obsolete-phrase", "two", "folded-junk", "two-forms", "no-domain",
        "half-bad", "empty-group"])
def test_strict_addresses(value: str, expected: tuple[str, ...] | None) -> None:
    assert strict_addresses(value) == expected


def test_escape_controls() -> None:
    assert escape_controls("A\x00B\rC\\x00") == "A\\x00B\\x0dC\\\\x00"


@pytest.mark.parametrize("exc,full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (sqlite3.OperationalError("database or disk is full"), True),
    (sqlite3.OperationalError("database is locked"), False),
    (OSError(errno.EIO, "I/O error"), False),
], ids=["enospc", "edquot", "sqlite-full", "sqlite-locked", "eio"])
def test_is_storage_full(exc: BaseException, full: bool) -> None:
    wrapper = RuntimeError("commit failed")
    wrapper.__cause__ = exc
    assert is_storage_full(exc) is full and is_storage_full(wrapper) is full


def test_postmaster_must_be_a_local_mailbox(tmp_path: Path) -> None:
    base = {"domain": "h.test", "extra_domains": ["x.test"]}
    assert from_dict(tmp_path, base).postmaster == "postmaster@h.test"
    ok = from_dict(tmp_path, {**base, "smtp": {"postmaster": "Ops@X.test"}})
    assert ok.postmaster == "ops@x.test"
    for bad in ("ops@gmail.com", "ops", "@h.test"):
        with pytest.raises(ConfigError):
            from_dict(tmp_path, {**base, "smtp": {"postmaster": bad}})
