"""``mssante accounts campaign`` as an operator runs it (subprocesses on a temp data dir)."""

from __future__ import annotations

import asyncio
import email
import io
import re
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path

from pypdf import PdfReader

from mailserver.app import open_services
from mailserver.config import CONFIG_NAME, load
from mailserver.letters import french_date
from mailserver.lifecycle import paris_date
from tests.conftest import INS
from tests.smtp.test_cli import cli_dir, mssante  # noqa: F401 - the fixture is used

CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")
INS_BOTH = "285067512345639"  # woman born in June 1985
HEADER = "ins;nom;prenoms;date_naissance;adresse_1;adresse_2;adresse_3;code_postal;commune;email"
ROWS = [
    f"{INS[0]};Dupont;Marie;1979-03-12;12 rue des Lilas;;;75011;Paris;",
    f"{INS[1]};Martin;Jean;15/12/1985;;;;;;jean.martin@example.org",
    f"{INS[1][:-2]}00;Bernard;Luc;1985-12-01;3 place X;;;69001;Lyon;",  # bad INS key
    f"{INS_BOTH};Petit;Claire Anne;1985-06-30;8 allée des Pins;Bât. C;;33000;Bordeaux;"
    "claire@example.org",
]


def _outbox(data_dir: Path) -> list[Message]:
    return [email.message_from_bytes(p.read_bytes())
            for p in sorted((data_dir / "outbox").glob("*.eml"))]


def _body(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


async def _code_works(data_dir: Path, ins: str, code: str) -> bool:
    services = await open_services(load(data_dir / CONFIG_NAME))
    try:
        info = await services.directory.by_ins(ins)
        assert info is not None
        return await services.directory.check_provisional_code(info.id, code)
    finally:
        await services.close()


def test_campaign_letters_emails_rerun_and_bad_row(cli_dir: Path, tmp_path: Path  # noqa: F811
                                                   ) -> None:
    today = paris_date(datetime.now(UTC))
    notified = today + timedelta(days=2)  # letters printed now, posted in two days
    deadline: date = notified + timedelta(weeks=6)
    patients = tmp_path / "patients.csv"
    patients.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    letters = tmp_path / "letters.pdf"

    run = mssante("accounts", "campaign", "--patients", str(patients), "--notified",
                  notified.isoformat(), "--letters", str(letters), data_dir=cli_dir)
    assert run.returncode == 1, run.stderr  # one row refused
    assert "line 4: refused: bad INS: INS key does not match" in run.stdout
    for line, ins in ((2, INS[0]), (3, INS[1]), (5, INS_BOTH)):
        assert f"line {line}: created {ins}@patient.cli.mssante.test (deadline " \
               f"{deadline.isoformat()}" in run.stdout
    assert "created 3, existing 0, refused 1; letters 2" in run.stdout
    assert not CODE.search(run.stdout + run.stderr)  # codes only in the letters (and email)

    for ins in (INS[0], INS[1], INS_BOTH):
        show = mssante("accounts", "show", "--ins", ins, data_dir=cli_dir)
        assert "State: pending" in show.stdout, show.stderr
        assert f"Deadline to oppose: {deadline.isoformat()}" in show.stdout
    assert mssante("accounts", "show", "--ins", f"{INS[1][:-2]}00",
                   data_dir=cli_dir).returncode == 2

    # One PDF, one page per patient with a postal address, each with its own code.
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(letters.read_bytes())).pages]
    assert len(pages) == 2
    assert "Marie DUPONT" in pages[0] and "75011 PARIS" in pages[0]
    assert "Claire Anne PETIT" in pages[1] and "Bât. C" in pages[1]
    codes = {}
    for ins, page in zip((INS[0], INS_BOTH), pages, strict=True):
        found = CODE.findall(page)
        assert len(found) == 1
        codes[ins] = found[0]
        assert f"au plus tard le {french_date(deadline)}" in page
        assert "3422" in page and "/premiere-connexion" in page
        assert f"{ins}@patient.cli.mssante.test" in page
    assert letters.stat().st_mode & 0o077 == 0

    # Emails: the email-only patient gets the code, the one with a letter only the news.
    mails = {m["To"]: m for m in _outbox(cli_dir)}
    assert set(mails) == {"jean.martin@example.org", "claire@example.org"}
    jean = _body(mails["jean.martin@example.org"])
    assert len(CODE.findall(jean)) == 1 and french_date(deadline) in jean
    codes[INS[1]] = CODE.findall(jean)[0]
    claire = _body(mails["claire@example.org"])
    assert not CODE.search(claire) and "courrier postal" in claire
    for ins, code in codes.items():
        assert asyncio.run(_code_works(cli_dir, ins, code)), ins

    # Rerun (without the bad row): nothing created, no letter, no email, the codes still work.
    patients.write_text("\n".join([HEADER, *ROWS[:2], ROWS[3]]) + "\n", encoding="utf-8")
    again_letters = tmp_path / "again.pdf"
    again = mssante("accounts", "campaign", "--patients", str(patients), "--notified",
                    notified.isoformat(), "--letters", str(again_letters), data_dir=cli_dir)
    assert again.returncode == 0, again.stderr
    assert "created 0, existing 3, refused 0; letters 0; emails 0" in again.stdout
    assert f"line 4: exists, left alone: {INS_BOTH}@patient.cli.mssante.test" in again.stdout
    assert not again_letters.exists()
    assert len(_outbox(cli_dir)) == 2
    for ins, code in codes.items():
        assert asyncio.run(_code_works(cli_dir, ins, code)), ins
    for ins in (INS[0], INS_BOTH):
        show = mssante("accounts", "show", "--ins", ins, data_dir=cli_dir)
        assert "State: pending" in show.stdout and "History: none" in show.stdout

    # A previous run's letters are never overwritten; a past deadline is refused.
    clash = mssante("accounts", "campaign", "--patients", str(patients), "--letters",
                    str(letters), data_dir=cli_dir)
    assert clash.returncode == 2 and "never overwritten" in clash.stderr
    late = mssante("accounts", "campaign", "--patients", str(patients), "--notified",
                   (today - timedelta(weeks=7)).isoformat(), data_dir=cli_dir)
    assert late.returncode == 2 and "already past" in late.stderr
