"""``mssante accounts campaign``: announce patient accounts from a CSV file.

Creates the pending accounts (:mod:`mailserver.directory.campaign`), writes one PDF of letters
per run for the patients with a postal address (:mod:`mailserver.letters`), and emails the
patients with an email address through the personal-address mailer. The code is in the letter;
the email carries it only for a patient without a postal address.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from mailserver.app import Services, system_mail_settings
from mailserver.cli.common import (
    Subparsers,
    add_command,
    command_group,
    load_config,
    with_services,
)
from mailserver.directory.campaign import (
    CampaignResult,
    Created,
    Existing,
    Patient,
    Refused,
    read_patients,
    run_campaign,
)
from mailserver.errors import ValidationError
from mailserver.files import atomic_write
from mailserver.letters import Letter, announcement_email, build_letters
from mailserver.lifecycle import deadline_for, paris_date
from mailserver.mailer import PersonalMail

__all__ = ["register"]


def _read(path: Path, today: date) -> list[tuple[int, Patient | Refused]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return list(read_patients(f, today=today))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path} is not UTF-8 text") from exc


def _letters_path(args: argparse.Namespace) -> Path:
    if args.letters is not None:
        path = Path(args.letters)
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = args.data_dir / "letters" / f"campagne-{stamp}.pdf"
    if path.exists():
        raise ValidationError(f"{path} exists: a previous run's letters are never overwritten")
    return path


def _campaign(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    today = paris_date(datetime.now(UTC))
    notified: date = args.notified or today
    if deadline_for(notified) < today:
        raise ValidationError(f"notified on {notified}: the 6-week deadline is already past")
    letters_path = _letters_path(args)
    rows = _read(Path(args.patients), today)
    base = system_mail_settings(config).base_url or f"https://{config.hostname}"
    webmail_url = f"{base.rstrip('/')}/premiere-connexion"  # the first connection's page
    report: list[str] = []
    letters: list[Letter] = []
    mail_failures = 0
    emails = 0

    async def run(s: Services) -> CampaignResult:
        console = Console(stderr=True)
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                      disable=args.quiet) as bar:
            task = bar.add_task("Announcing accounts", total=len(rows))

            async def on_row(line: int, outcome: Created | Existing | Refused) -> None:
                nonlocal mail_failures, emails
                bar.advance(task)
                if isinstance(outcome, Refused):
                    report.append(f"line {line}: refused: {outcome.reason}")
                    return
                if isinstance(outcome, Existing):
                    report.append(f"line {line}: exists, left alone: {outcome.address}")
                    return
                p = outcome.patient
                report.append(f"line {line}: created {outcome.account.address} (deadline "
                              f"{outcome.deadline.isoformat()}"
                              f"{', letter' if p.postal else ''}"
                              f"{', email' if p.email else ''})")
                if p.postal:
                    letters.append(Letter((p.name, *p.postal), outcome.account.address,
                                          outcome.code, outcome.deadline, webmail_url,
                                          notified))
                if p.email:
                    subject, text = announcement_email(
                        name=p.name, mailbox=outcome.account.address,
                        deadline=outcome.deadline, webmail_url=webmail_url,
                        code=None if p.postal else outcome.code)
                    try:
                        await s.mailer.send(PersonalMail(p.email, subject, text))
                    except Exception as exc:  # reported; the run goes on
                        mail_failures += 1
                        report.append(f"line {line}: email not sent ({type(exc).__name__}); "
                                      "reissue the code with `accounts reissue-code`")
                    else:
                        emails += 1

            return await run_campaign(s.directory, rows, notified_on=notified, on_row=on_row)

    try:
        result = with_services(args.data_dir, run)
    finally:
        # Whatever happened, the codes already issued go to paper before the process ends.
        if letters:
            letters_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(letters_path, build_letters(letters), exclusive=True)
    print("\n".join(report))
    refused = len(result.refused)
    print(f"created {len(result.created)}, existing {len(result.existing)}, "
          f"refused {refused}; "
          f"letters {len(letters)}" + (f" in {letters_path}" if letters else "")
          + f"; emails {emails}" + (f", {mail_failures} not sent" if mail_failures else ""))
    if refused or mail_failures:
        print("mssante: some rows were not announced (see above)", file=sys.stderr)
        return 1
    return 0


def register(sub: Subparsers) -> None:
    acc = command_group(sub, "accounts", help="patient account lifecycle (agents, operator)")
    p = add_command(acc, "campaign", _campaign,
                    help="announce pending accounts from a CSV file (letters PDF, emails)")
    p.add_argument("--patients", required=True, metavar="FILE.csv",
                   help="ins;nom;prenoms;date_naissance;adresse_1;adresse_2;adresse_3;"
                        "code_postal;commune;email (see the README)")
    p.add_argument("--notified", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the day the letters and emails go out (default today); the "
                        "deadline is 6 weeks later")
    p.add_argument("--letters", metavar="OUT.pdf",
                   help="the PDF of letters (default DATA_DIR/letters/campagne-<time>.pdf; "
                        "never overwritten)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
