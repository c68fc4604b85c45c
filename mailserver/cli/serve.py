"""``mssante serve`` and ``mssante demo``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailserver.app import Services, open_services
from mailserver.cli.common import Subparsers, add_command, load_config
from mailserver.cli.demo_seed import DemoParties, seed_demo_mail
from mailserver.cli.migrate import migrate_data_dir, print_upgrade
from mailserver.cli.setup import init_data_dir
from mailserver.config import ListenConfig, parse_hostport
from mailserver.directory.service import AccountInfo
from mailserver.errors import ConfigError
from mailserver.identifiers import ins_key
from mailserver.runtime import run, run_loop
from mailserver.supervisor import serve_workers, with_shared_metrics

__all__ = ["register", "populate_demo", "DEMO_DOMAIN", "DEMO_PASSWORD"]

DEMO_DOMAIN = "demo.mssante.test"
DEMO_PASSWORD = "demo-mssante-2026"  # noqa: S105 - printed demo credentials, demo only


def _listen_from_args(base: ListenConfig, args: argparse.Namespace) -> ListenConfig:
    values = {}
    for name in ("smtp", "submission", "submissions", "imap", "imaps", "http", "metrics"):
        value = getattr(args, name, None)
        if value:
            parse_hostport(value)
            values[name] = value
    listen = dataclasses.replace(base, **values)
    if listen.metrics and listen.http and parse_hostport(listen.metrics) == parse_hostport(
            listen.http) and parse_hostport(listen.http)[1] != 0:
        raise ConfigError(["--metrics must not be the webmail's --http address"])
    return listen


def _serve(args: argparse.Namespace) -> int:

    config = load_config(args.data_dir)
    listen = _listen_from_args(config.listen, args)
    if not any(dataclasses.astuple(listen)):
        print("mssante: nothing to serve: give --smtp, --submission, --submissions, --imap, "
              "--imaps or --http")
        return 2
    if args.workers < 1:
        print("mssante: --workers must be 1 or more")
        return 2
    if args.workers > 1 and config.database_url.startswith("sqlite"):
        print("mssante: --workers above 1 needs PostgreSQL: the SQLite store is written by "
              "one process (see docs/SCALING.md); use --workers 1 or a postgresql+asyncpg "
              "database_url")
        return 2
    if args.migrate:
        print_upgrade(asyncio.run(migrate_data_dir(config)))
    if args.workers > 1:
        with_shared_metrics()  # may start the command again, with the metrics directory
        return serve_workers(config, listen, args.workers)
    run_loop(config, run(config, listen))  # refuses a schema behind or ahead of this release
    return 0


DEMO_PROS = (
    # rpps, local part, name, profession code
    ("10003244273", "claire.martin", "Dr Claire Martin", "10"),
    ("10000000017", "luc.moreau", "Pr Luc Moreau", "10"),
    ("10000000025", "paul.bernard", "Paul Bernard", "21"),
    ("10000000033", "ines.petit", "Inès Petit", "60"),
    ("10000000041", "julie.kine", "Julie Robert", "70"),
)
DEMO_PATIENTS = (
    ("279035121518989", "Marie DUPONT"),
    ("185127510812345", "Jean DURAND"),
)


def _demo(args: argparse.Namespace) -> int:

    data_dir: Path = args.data_dir or Path("demo-data")
    fresh = not (data_dir / "mssante.toml").exists()
    if fresh:
        init_data_dir(data_dir, DEMO_DOMAIN)
    base = load_config(data_dir)
    # Clients connect to the demo by a name its certificate carries ("localhost" for
    # loopback: some clients, mbsync among them, do not match certificate IP addresses).
    public = "localhost" if args.host in ("127.0.0.1", "::1", "localhost") else args.host
    config = dataclasses.replace(
        base,
        webmail=dataclasses.replace(
            base.webmail, secure_cookies=False,
            base_url=base.webmail.base_url or f"http://{public}:{args.http_port}"),
        smtp=dataclasses.replace(base.smtp, hostname=base.smtp.hostname or public))

    async def populate() -> list[tuple[str, str, str]]:

        services = await open_services(config, migrate=True)
        try:
            return await populate_demo(services, seed=fresh)
        finally:
            await services.close()

    codes = asyncio.run(populate())
    host = args.host
    listen = ListenConfig(smtp=f"{host}:{args.base_port + 25}",
                          submission=f"{host}:{args.base_port + 87}",
                          submissions=f"{host}:{args.base_port + 65}",
                          imap=f"{host}:{args.base_port + 43}",
                          imaps=f"{host}:{args.base_port + 93}",
                          http=f"{host}:{args.http_port}")
    print()
    print(f"MSSante demo server, data in {data_dir.resolve()}")
    print(f"Professionals (password {DEMO_PASSWORD}):")
    for _, local, name, _ in DEMO_PROS:
        print(f"  {name:<20} {local}@{DEMO_DOMAIN}")
    print(f"  {'Pharmacie Centrale':<20} pharmacie.centrale@{DEMO_DOMAIN}")
    print(f"  {'Postmaster':<20} {config.postmaster}")
    print("Patients (webmail first connection: provisional code, NIR = the first 13 characters"
          " of the address, and any Vitale card serial of 8 to 20 digits in the demo):")
    for name, address, code in codes:
        print(f"  {name:<20} {address}  {'code ' + code if not code.startswith('(') else code}")
    def port(value: str) -> str:
        return value.rpartition(":")[2] or "-"

    print(f"Mail client settings: server {public}; SMTP submission port "
          f"{port(listen.submission)} (STARTTLS) or {port(listen.submissions)} (SSL/TLS); "
          f"IMAP port {port(listen.imap)} (STARTTLS) or {port(listen.imaps)} (SSL/TLS); "
          f"user = your address; trust the CA {data_dir / 'tls' / 'ca.pem'}")
    print(f"One-time codes and notifications are written to {data_dir / 'outbox'}")
    if listen.http:
        print(f"Patient webmail: http://{public}:{args.http_port}/")
    print()
    run_loop(config, run(config, listen))
    return 0


async def populate_demo(s: Services, *, seed: bool) -> list[tuple[str, str, str]]:
    """Create the demo accounts that are missing; seed demo mail into a fresh data dir.

    Returns (name, address, provisional code or a note) for each demo patient.
    """
    codes: list[tuple[str, str, str]] = []
    for rpps, local, name, prof in DEMO_PROS:
        if await s.directory.lookup(f"{local}@{DEMO_DOMAIN}") is None:
            await s.directory.add_professional(
                rpps=rpps, email=f"{local}@{DEMO_DOMAIN}", name=name, profession=prof,
                password=DEMO_PASSWORD)
    if await s.directory.lookup(f"pharmacie.centrale@{DEMO_DOMAIN}") is None:
        await s.directory.add_organisation(
            email=f"pharmacie.centrale@{DEMO_DOMAIN}", name="Pharmacie Centrale",
            structure_id="1750000000", profession="21", password=DEMO_PASSWORD)
    if await s.directory.lookup(s.config.postmaster) is None:
        # RFC 5321 4.5.1: mail for postmaster goes here ([smtp] postmaster).
        await s.directory.add_organisation(
            email=s.config.postmaster, name="Postmaster", structure_id="1750000000",
            password=DEMO_PASSWORD)
    for ins, name in DEMO_PATIENTS:
        nir = ins[:13]
        ins = _full_ins(ins)
        existing = await s.directory.by_ins(ins)
        if existing is None:
            info, code = await s.directory.add_patient(
                ins=ins, name=name, contact={"email": f"{nir}@perso.example"})
        elif await s.directory.is_activated(existing.id):
            info, code = existing, "(already activated: log in with your identifier)"
        else:
            info, code = existing, await s.directory.new_provisional_code(existing.id)
        codes.append((name, info.address, code))
    if seed:
        await _seed(s)
    return codes


async def _seed(s: Services) -> None:
    """Seed a fresh demo with a few conversations (see demo_seed)."""

    async def account(address: str) -> AccountInfo:
        info = await s.directory.lookup(address)
        assert info is not None, address  # noqa: S101 - created just above
        return info

    async def submit(sender: Any, rcpts: Sequence[str], raw: bytes,
                     conversation: int | None) -> dict[str, int]:
        report = await s.delivery.submit_as(sender, rcpts, raw, conversation_id=conversation)
        return dict(report.conversation_ids)

    (doctor_rpps, doctor_local, doctor_name, _), (_, specialist_local, _, _) = DEMO_PROS[:2]
    patients = [await s.directory.by_ins(_full_ins(ins)) for ins, _ in DEMO_PATIENTS]
    assert patients[0] is not None and patients[1] is not None  # noqa: S101
    parties = DemoParties(
        doctor=await account(f"{doctor_local}@{DEMO_DOMAIN}"), doctor_name=doctor_name,
        doctor_rpps=doctor_rpps,
        specialist=await account(f"{specialist_local}@{DEMO_DOMAIN}"),
        pharmacy=await account(f"pharmacie.centrale@{DEMO_DOMAIN}"),
        patient=patients[0], patient_ins=_full_ins(DEMO_PATIENTS[0][0]),
        patient_name=DEMO_PATIENTS[0][1], other_patient=patients[1])
    await seed_demo_mail(parties, submit)


def _full_ins(ins: str) -> str:

    return f"{ins[:13]}{ins_key(ins[:13]):02d}"


def register(sub: Subparsers) -> None:
    p = add_command(sub, "serve", _serve, help="run the server")
    for name, role in (("smtp", "inbound SMTP between operators (port-25 role)"),
                       ("submission", "SMTP submission with STARTTLS (587 role)"),
                       ("submissions", "SMTP submission over implicit TLS (465 role)"),
                       ("imap", "IMAP with STARTTLS (143 role)"),
                       ("imaps", "IMAP over implicit TLS (993 role)"),
                       ("http", "patient webmail and client autoconfiguration"),
                       ("metrics", "admin listener: /metrics, /healthz, /readyz (an admin "
                                   "network only, never the webmail's address)")):
        p.add_argument(f"--{name}", metavar="HOST:PORT", help=role)
    p.add_argument("--migrate", action="store_true",
                   help="upgrade the database schema first if it is behind this release's "
                        "(without it, serve refuses to start on an older schema)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes sharing the listeners (above 1: PostgreSQL only)")

    d = sub.add_parser("demo", help="initialise a demo data dir with a demo directory, serve")
    d.add_argument("--data-dir", type=Path, default=None, help="default: ./demo-data")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--base-port", type=int, default=2500,
                   help="SMTP on base+25, submission base+87 (implicit TLS base+65), IMAP "
                        "base+43, IMAPS base+93")
    d.add_argument("--http-port", type=int, default=8080)
    d.set_defaults(func=_demo)
