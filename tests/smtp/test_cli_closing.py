"""``mssante accounts close|reactivate|delete-archive|purge-due`` as an agent or an operator
runs them (subprocesses), and ``accounts show`` saying when a deletion is effective."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailserver.lifecycle import paris_date
from tests.conftest import INS
from tests.smtp.test_cli import cli_dir, mssante  # noqa: F401 - the fixture is used


def test_close_reactivate_delete_purge(cli_dir: Path) -> None:  # noqa: F811
    add = mssante("patient", "add", "--ins", INS[0], "--name", "Marie Dupont",
                  data_dir=cli_dir)
    assert add.returncode == 0, add.stderr
    close = mssante("accounts", "close", "--ins", INS[0], "--agent", "A1", data_dir=cli_dir)
    assert close.returncode == 0, close.stderr
    assert "Space closed" in close.stdout
    again = mssante("accounts", "close", "--ins", INS[0], "--agent", "A1", data_dir=cli_dir)
    assert again.returncode == 2 and "cannot close an account that is closed" in again.stderr
    # The patient never connected: reactivating prints a code for the first connection.
    back = mssante("accounts", "reactivate", "--ins", INS[0], "--agent", "A2",
                   data_dir=cli_dir)
    assert back.returncode == 0, back.stderr
    assert "archived data back" in back.stdout and "Provisional code" in back.stdout

    close = mssante("accounts", "close", "--ins", INS[0], "--agent", "A1", data_dir=cli_dir)
    assert close.returncode == 0, close.stderr
    delete = mssante("accounts", "delete-archive", "--ins", INS[0], "--agent", "A3",
                     data_dir=cli_dir)
    assert delete.returncode == 0, delete.stderr
    assert "Archive deleted now" in delete.stdout
    show = mssante("accounts", "show", "--ins", INS[0], data_dir=cli_dir)
    assert "State: archive_deleted" in show.stdout
    assert "Deletion requested:" in show.stdout and "Archive deleted:" in show.stdout
    assert "delete_archive: closed -> archive_deleted  by system:delete-archive" in show.stdout

    today = paris_date(datetime.now(UTC))
    future = today + timedelta(days=366 * 10 + 3)
    refused = mssante("accounts", "purge-due", "--as-of", future.isoformat(), data_dir=cli_dir)
    assert refused.returncode == 2 and "--dry-run" in refused.stderr
    dry = mssante("accounts", "purge-due", "--as-of", future.isoformat(), "--dry-run",
                  data_dir=cli_dir)
    assert dry.returncode == 0, dry.stderr
    assert "would purge" in dry.stdout and "1 archive(s) due" in dry.stdout
    soon = mssante("accounts", "purge-due", "--as-of", (future - timedelta(days=30))
                   .isoformat(), "--dry-run", data_dir=cli_dir)
    assert "0 archive(s) due" in soon.stdout
    now = mssante("accounts", "purge-due", data_dir=cli_dir)
    assert now.returncode == 0 and "0 archive(s) purged" in now.stdout
    show = mssante("accounts", "show", "--ins", INS[0], data_dir=cli_dir)
    assert "State: archive_deleted" in show.stdout
