"""``mssante pro add``, ``mssante org add``, ``mssante patient add``."""

from __future__ import annotations

import argparse
from datetime import date

from mailserver.app import Services
from mailserver.cli.common import (
    Subparsers,
    add_command,
    command_group,
    read_password,
    with_services,
)

__all__ = ["register"]


def _pro_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)

    async def run(s: Services) -> None:
        info = await s.directory.add_professional(
            rpps=args.rpps, email=args.email, name=args.name, profession=args.profession,
            password=password, structure_id=args.structure)
        print(f"Professional mailbox created: {info.address} (RPPS {info.rpps})")

    with_services(args.data_dir, run)
    return 0


def _org_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)

    async def run(s: Services) -> None:
        info = await s.directory.add_organisation(
            email=args.email, name=args.name, structure_id=args.structure,
            profession=args.profession, password=password, bal_type=args.type)
        print(f"{info.bal_type} mailbox created: {info.address}")

    with_services(args.data_dir, run)
    return 0


def _patient_add(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        contact = {}
        if args.contact_email:
            contact["email"] = args.contact_email
        if args.contact_phone:
            contact["phone"] = args.contact_phone
        info, code = await s.directory.add_patient(ins=args.ins, name=args.name,
                                                   status=args.status, contact=contact or None,
                                                   notified_on=args.notified)
        print(f"Patient mailbox: {info.address}")
        print(f"Provisional code: {code}")
        life = await s.directory.lifecycle(info.id)
        if life.deadline is not None and life.opens_at is not None:
            print(f"Deadline to oppose: {life.deadline.isoformat()} (opens automatically on "
                  f"{life.opens_at.strftime('%Y-%m-%d %H:%M')} Europe/Paris)")

    with_services(args.data_dir, run)
    return 0


def register(sub: Subparsers) -> None:
    pro_sub = command_group(sub, "pro", help="professional mailboxes (BAL PER)")
    p = add_command(pro_sub, "add", _pro_add, help="register a professional with a mailbox")
    p.add_argument("--rpps", required=True, help="RPPS number (11 digits, Luhn)")
    p.add_argument("--email", required=True, help="mailbox address on our domain")
    p.add_argument("--name", required=True)
    p.add_argument("--profession", required=True, help="profession code (TRE_G15, e.g. 10)")
    p.add_argument("--structure", help="idNat_Struct of the place of practice")
    p.add_argument("--password-stdin", action="store_true", help="read the password on stdin")

    org_sub = command_group(sub, "org", help="organisation (ORG) and application (APP) mailboxes")
    p = add_command(org_sub, "add", _org_add, help="register an organisation mailbox")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--structure", required=True, help="idNat_Struct (1+FINESS, 3+SIRET...)")
    p.add_argument("--profession", help="profession code (21 for a pharmacy)")
    p.add_argument("--type", choices=("ORG", "APP"), default="ORG")
    p.add_argument("--password-stdin", action="store_true")

    pat_sub = command_group(sub, "patient", help="patient mailboxes")
    p = add_command(pat_sub, "add", _patient_add,
                    help="register a patient (prints the provisional code)")
    p.add_argument("--ins", required=True, help="INS (NIR + key, 15 characters)")
    p.add_argument("--name", required=True)
    p.add_argument("--status", default="open",
                   choices=("pending", "open", "opposed", "closed", "suspended"),
                   help="pending: announced, opens 6 weeks after the notification unless "
                        "the patient opposes")
    p.add_argument("--notified", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="pending: the day the patient was notified (default today)")
    p.add_argument("--contact-email")
    p.add_argument("--contact-phone")
