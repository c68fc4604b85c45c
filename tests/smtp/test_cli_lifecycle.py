"""``mssante accounts ...`` as an agent or an operator runs it (subprocesses)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailserver.lifecycle import paris_date
from tests.conftest import INS
from tests.smtp.test_cli import cli_dir, mssante  # noqa: F401 - the fixture is used

CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


def test_pending_oppose_activate_show(cli_dir: Path) -> None:  # noqa: F811
    today = paris_date(datetime.now(UTC))
    add = mssante("patient", "add", "--ins", INS[0], "--name", "Marie Dupont", "--status",
                  "pending", data_dir=cli_dir)
    assert add.returncode == 0, add.stderr
    deadline = today + timedelta(weeks=6)
    assert f"Deadline to oppose: {deadline.isoformat()}" in add.stdout
    assert f"{deadline + timedelta(days=1)} 00:00 Europe/Paris" in add.stdout

    show = mssante("accounts", "show", "--ins", INS[0], data_dir=cli_dir)
    assert show.returncode == 0, show.stderr
    assert "State: pending" in show.stdout and "History: none" in show.stdout
    assert f"Deadline to oppose: {deadline.isoformat()}" in show.stdout

    opp = mssante("accounts", "oppose", "--ins", INS[0], "--agent", "A12", "--reason",
                  "appel au 3422", data_dir=cli_dir)
    assert opp.returncode == 0, opp.stderr
    again = mssante("accounts", "oppose", "--ins", INS[0], "--agent", "A12", data_dir=cli_dir)
    assert again.returncode == 2 and "cannot oppose an account that is opposed" in again.stderr

    act = mssante("accounts", "activate", "--ins", INS[0], "--agent", "A7", data_dir=cli_dir)
    assert act.returncode == 0, act.stderr
    assert CODE.search(act.stdout)
    show = mssante("accounts", "show", "--ins", INS[0], data_dir=cli_dir)
    assert "State: open" in show.stdout and "Deadline" not in show.stdout
    lines = [ln for ln in show.stdout.splitlines() if ln.startswith("  ")]
    assert len(lines) == 2
    assert "oppose: pending -> opposed  by agent:A12  (appel au 3422)" in lines[0]
    assert "activate: opposed -> open  by agent:A7" in lines[1]

    code1 = mssante("accounts", "reissue-code", "--ins", INS[0], data_dir=cli_dir)
    assert code1.returncode == 0 and CODE.search(code1.stdout)
    unknown = mssante("accounts", "show", "--ins", INS[1], data_dir=cli_dir)
    assert unknown.returncode == 2 and "no patient account" in unknown.stderr


def test_open_due(cli_dir: Path) -> None:  # noqa: F811
    today = paris_date(datetime.now(UTC))
    # Notified 6 weeks and 1 day ago: the deadline was yesterday, the account opens today.
    for ins, notified in ((INS[0], today - timedelta(weeks=6, days=1)),
                          (INS[1], today - timedelta(weeks=6))):
        r = mssante("patient", "add", "--ins", ins, "--name", "X", "--status", "pending",
                    "--notified", notified.isoformat(), data_dir=cli_dir)
        assert r.returncode == 0, r.stderr
    future = (today + timedelta(days=1)).isoformat()
    refused = mssante("accounts", "open-due", "--as-of", future, data_dir=cli_dir)
    assert refused.returncode == 2 and "--dry-run" in refused.stderr
    dry = mssante("accounts", "open-due", "--as-of", future, "--dry-run", data_dir=cli_dir)
    assert dry.returncode == 0 and "2 account(s) due" in dry.stdout
    run = mssante("accounts", "open-due", data_dir=cli_dir)
    assert run.returncode == 0, run.stderr
    assert f"opened {INS[0]}@" in run.stdout and "1 account(s) opened" in run.stdout
    rerun = mssante("accounts", "open-due", data_dir=cli_dir)
    assert "0 account(s) opened" in rerun.stdout
    show = mssante("accounts", "show", "--ins", INS[0], data_dir=cli_dir)
    assert "auto_open: pending -> open  by system:open-due" in show.stdout
    assert "State: pending" in mssante("accounts", "show", "--ins", INS[1],
                                       data_dir=cli_dir).stdout
