"""``mssante documents``: the patients' document store (list, audit, consent, treating doctor).

``documents list`` prints what the patient sees in their record (label, type code, author,
date); ``documents audit`` verifies the hash chain of the record's access log and exits 1 when
it is broken.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from attachments.labels import Label
from dossier_bridge.store import DocumentStore
from mailserver.app import Services
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.directory.service import AccountInfo
from mailserver.errors import UnknownAddress, ValidationError

__all__ = ["register"]


async def _patient(s: Services, ins: str) -> AccountInfo:
    info = await s.directory.by_ins(ins)
    if info is None or not info.is_patient:
        raise UnknownAddress("no patient with this INS")
    return info


def _store(s: Services) -> Any:
    return DocumentStore(s.db, s.keys, s.store.blobs, inline_max=s.config.store.inline_max)


def _list(args: argparse.Namespace) -> int:
    label = None
    if args.label:
        try:
            label = Label(args.label.upper())
        except ValueError:
            raise ValidationError(f"unknown label {args.label!r}") from None

    async def run(s: Services) -> list[dict[str, Any]]:
        patient = await _patient(s, args.ins)
        docs = await _store(s).list(patient, patient.id, label=label)
        return [{
            "id": d.id, "label": d.label.value, "label_display": d.label.display_fr,
            "type_code": d.type_code, "title": d.title, "filename": d.filename,
            "mime_type": d.mime_type, "size": d.size, "author": d.author,
            "date": d.date.isoformat(), "filed_at": d.filed_at.isoformat(),
            "masked": d.masked, "needs_review": d.needs_review,
            "added_by_patient": d.added_by_patient, "source_message_id": d.source_message_id,
        } for d in docs]

    rows = with_services(args.data_dir, run)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("Aucun document.")
        return 0
    for r in rows:
        author = (r["author"].get("name") or r["author"].get("rpps")
                  or ("patient" if r["added_by_patient"] else "?"))
        flags = " ".join(f for f, on in (("[masqué]", r["masked"]),
                                         ("[à vérifier]", r["needs_review"])) if on)
        print(f"{r['id']:>5}  {r['label_display']:<28} {r['type_code'] or '-':<10} "
              f"{r['date'][:10]}  {author:<24} {r['title']} {flags}".rstrip())
    return 0


def _audit(args: argparse.Namespace) -> int:
    async def run(s: Services) -> tuple[Any, list[Any]]:
        patient = await _patient(s, args.ins)
        store = _store(s)
        report = await store.verify_log(patient.id)
        entries = await store.log_entries(patient.id) if args.show else []
        return report, entries

    report, entries = with_services(args.data_dir, run)
    for e in entries:
        who = e.detail.get("name") or e.detail.get("rpps") or e.detail.get("kind") or "-"
        print(f"{e.seq:>5}  {e.at.isoformat(timespec='seconds')}  {e.action:<15} "
              f"doc={e.document_id if e.document_id is not None else '-':<6} {who}")
    if report.ok:
        print(f"Access log OK: {report.entries} entries, head {report.head}")
        return 0
    print(f"Access log BROKEN at entry {report.first_bad_seq} ({report.entries} entries):")
    for problem in report.problems:
        print(f"  - {problem}")
    return 1


def _consent(args: argparse.Namespace) -> int:
    scope, ref = ("team", str(args.team)) if args.team is not None else ("structure",
                                                                        args.structure or "")

    async def run(s: Services) -> list[Any]:
        patient = await _patient(s, args.ins)
        consents = _store(s).consents
        if args.action == "grant":
            await consents.grant(patient.id, scope, ref)
        elif args.action == "revoke":
            if not await consents.revoke(patient.id, scope, ref):
                raise ValidationError("no such consent")
        return list(await consents.list(patient.id))

    if args.action != "list" and not ref:
        raise ValidationError("give --structure ID or --team ID")
    for c in with_services(args.data_dir, run):
        print(f"{c.scope:<10} {c.ref:<20} {c.granted_at.isoformat(timespec='seconds')}")
    return 0


def _team(args: argparse.Namespace) -> int:
    async def run(s: Services) -> int:
        ids = []
        for address in args.member:
            info = await s.directory.lookup(address)
            if info is None or info.is_patient:
                raise UnknownAddress(f"no professional mailbox {address}")
            ids.append(info.id)
        return int(await _store(s).consents.create_team(args.name, ids))

    print(f"Care team {with_services(args.data_dir, run)} created")
    return 0


def _treating(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        patient = await _patient(s, args.ins)
        doctor = None
        if not args.clear:
            doctor = await s.directory.lookup(args.address or "")
            if doctor is None:
                raise UnknownAddress(f"no mailbox {args.address}")
        await _store(s).consents.set_treating_doctor(patient.id, doctor)

    if not args.clear and not args.address:
        raise ValidationError("give the doctor's address or --clear")
    with_services(args.data_dir, run)
    print("Treating doctor cleared" if args.clear else "Treating doctor set")
    return 0


def register(sub: Subparsers) -> None:
    ds = command_group(sub, "documents", help="patients' document store")

    p = add_command(ds, "list", _list, help="a patient's documents (what the patient sees)")
    p.add_argument("--ins", required=True)
    p.add_argument("--label", help="only this label (RADIO_SC, SYNTHESE, ...)")
    p.add_argument("--json", action="store_true")

    p = add_command(ds, "audit", _audit, help="verify a patient's access log (hash chain)")
    p.add_argument("--ins", required=True)
    p.add_argument("--show", action="store_true", help="also print the entries")

    p = add_command(ds, "consent", _consent,
                    help="a patient's consents (care team or establishment)")
    p.add_argument("action", choices=("list", "grant", "revoke"))
    p.add_argument("--ins", required=True)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--structure", help="establishment idNat_Struct (1+FINESS, 3+SIRET...)")
    g.add_argument("--team", type=int, help="care team id")

    p = add_command(ds, "team", _team, help="create a care team")
    p.add_argument("name")
    p.add_argument("--member", action="append", default=[], help="professional address")

    p = add_command(ds, "treating-doctor", _treating, help="set a patient's treating doctor")
    p.add_argument("--ins", required=True)
    p.add_argument("address", nargs="?")
    p.add_argument("--clear", action="store_true")
