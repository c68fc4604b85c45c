"""``mssante audit`` and the rows administrative commands leave (subprocesses, as an operator
runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import INS, RPPS
from tests.smtp.test_cli import cli_dir  # noqa: F401 - the fixture is used

PRO = "dr@cli.mssante.test"
SECRET = "un-mot-de-passe-long-6620"  # noqa: S105 - test credential


def run(*args: str, data_dir: Path, user: str = "bob") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    env.update(USER=user, MSSANTE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "mailserver", "--log-level", "WARNING", *args]
    return subprocess.run(command, input=SECRET + "\n",  # noqa: S603 - our own command
                          capture_output=True, text=True, timeout=120, env=env)


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_commands_recorded_and_queried(cli_dir: Path) -> None:  # noqa: F811
    add = run("pro", "add", "--rpps", RPPS[0], "--email", PRO, "--name", "Dr Test",
              "--profession", "10", "--password-stdin", "--operator", "alice",
              data_dir=cli_dir)
    assert add.returncode == 0, add.stderr
    pat = run("patient", "add", "--ins", INS[0], "--name", "Marie Dupont", "--status",
              "pending", data_dir=cli_dir)
    assert pat.returncode == 0, pat.stderr
    opp = run("accounts", "oppose", "--ins", INS[0], "--agent", "A12", data_dir=cli_dir)
    assert opp.returncode == 0, opp.stderr
    bad = run("accounts", "oppose", "--ins", INS[0], "--agent", "A12", data_dir=cli_dir)
    assert bad.returncode == 2

    mine = run("audit", "--account", PRO, "--json", data_dir=cli_dir)
    assert mine.returncode == 0, mine.stderr
    [row] = lines(mine.stdout)
    assert row["action"] == "admin-command" and row["actor"] == "alice"
    assert row["protocol"] == "cli" and row["details"] == {"command": "pro add"}
    assert row["account_id"] is not None and row["outcome"] == "ok"

    everything = lines(run("audit", "export", "--since", "2000-01-01", data_dir=cli_dir).stdout)
    commands = [(r["details"]["command"], r["actor"], r["outcome"])  # type: ignore[index]
                for r in everything if r["action"] == "admin-command"]
    assert ("patient add", "bob", "ok") in commands
    assert ("accounts oppose", "bob", "ok") in commands
    assert ("accounts oppose", "bob", "exit-2") in commands
    assert not any(c[0] == "audit" for c in commands)  # reading changes nothing
    [state] = [r for r in everything if r["action"] == "account-state"]
    assert state["actor"] == "agent:A12" and state["protocol"] == "cli"
    assert state["details"] == {"event": "oppose", "from_state": "pending",
                                "to_state": "opposed"}
    patient = str(state["address"])
    assert [r["action"] for r in lines(run("audit", "--account", patient, "--action",
                                           "account-state", "--json",
                                           data_dir=cli_dir).stdout)] == ["account-state"]
    assert SECRET not in json.dumps(everything)


def test_query_filters_and_table(cli_dir: Path) -> None:  # noqa: F811
    add = run("pro", "add", "--rpps", RPPS[0], "--email", PRO, "--name", "Dr Test",
              "--profession", "10", "--password-stdin", data_dir=cli_dir)
    assert add.returncode == 0, add.stderr
    today = datetime.now(UTC).date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    q = ("audit", "--account", PRO, "--json")
    assert len(lines(run(*q, "--since", today.isoformat(), data_dir=cli_dir).stdout)) == 1
    assert len(lines(run(*q, "--until", today.isoformat(), data_dir=cli_dir).stdout)) == 1
    assert lines(run(*q, "--since", tomorrow.isoformat(), data_dir=cli_dir).stdout) == []
    assert lines(run(*q, "--until", yesterday.isoformat(), data_dir=cli_dir).stdout) == []
    assert lines(run(*q, "--action", "login", data_dir=cli_dir).stdout) == []
    assert len(lines(run(*q, "--action", "admin-command", data_dir=cli_dir).stdout)) == 1
    table = run("audit", "--account", PRO, data_dir=cli_dir)
    assert table.returncode == 0, table.stderr
    out = table.stdout.splitlines()
    assert out[0].startswith("time (UTC)") and out[-1] == "1 event(s)"
    assert "admin-command" in out[1] and PRO in out[1]
    refused = run("audit", "export", data_dir=cli_dir)
    assert refused.returncode == 2 and "--since" in refused.stdout
    unknown = run("audit", "--action", "nonsense", data_dir=cli_dir)
    assert unknown.returncode == 2
