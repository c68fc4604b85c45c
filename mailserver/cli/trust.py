"""``mssante trust add | list | remove | refresh``: the operators of the trust space.

Local entries live in ``[trust] local_file`` (JSON, replaced atomically); a running server
re-reads it within a second. ``refresh`` loads the national whitelist now from the configured
file or URL (or ``--file``/``--url``) and prints what changed; the last good copy is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mailserver.app import build_trust_space
from mailserver.cli.common import Subparsers, add_command, command_group, load_config
from mailserver.config import Config, parse_hostport
from mailserver.errors import ValidationError
from mailserver.trust.space import TrustSpaceService, describe_diff
from mailserver.trust.trustlist import NextHop, TrustListError, load_local, save_local

__all__ = ["register"]


def _space(config: Config, *, file: Path | None = None, url: str = "") -> TrustSpaceService:
    space = build_trust_space(config)
    assert isinstance(space, TrustSpaceService)
    if file is not None or url:
        space.whitelist_file, space.whitelist_url = file, url
    return space


def _ca_label(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    fp = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return f"{cert.subject.rfc4514_string()}  sha256:{fp[:16]}"


def _add(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    path = config.path(config.trust.local_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        local = load_local(path)
        hop = None
        if args.mx:
            host, port = parse_hostport(args.mx)
            hop = NextHop(host, port)
        local = local.with_domain(args.domain, args.dn or (), hop)
        for ca in args.ca or ():
            local = local.with_ca(Path(ca).read_text(encoding="ascii"))
    except (TrustListError, ValueError, OSError) as exc:
        raise ValidationError(str(exc)) from exc
    save_local(path, local)
    entry = local.get(args.domain)
    assert entry is not None
    print(f"Trusted {entry.domain}: {len(entry.dns)} certificate DN(s)"
          + (f", next hop {entry.next_hop.host}:{entry.next_hop.port}" if entry.next_hop else "")
          + f"; {len(local.ca_pems)} CA certificate(s) trusted")
    return 0


def _remove(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    path = config.path(config.trust.local_file)
    try:
        local = load_local(path)
        if args.domain:
            if local.get(args.domain) is None:
                print(f"{args.domain} is not a local trust entry")
                return 1
            local = local.without_domain(args.domain)
        if args.ca:
            keep = tuple(p for p in local.ca_pems if args.ca.lower() not in _ca_label(p).lower())
            if len(keep) == len(local.ca_pems):
                print("no trusted CA matches")
                return 1
            local = type(local)(domains=local.domains, ca_pems=keep)
    except TrustListError as exc:
        raise ValidationError(str(exc)) from exc
    if not args.domain and not args.ca:
        print("give --domain and/or --ca")
        return 1
    save_local(path, local)
    print("Removed")
    return 0


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    space = _space(config)
    tl = space.trustlist
    local_domains = {d.domain for d in tl.local.domains}
    national = tl.national.domains if tl.national else frozenset()
    rows: list[dict[str, Any]] = []
    for domain in sorted(tl.domains):
        hop = tl.next_hop(domain)
        source = "+".join(s for s, ok in (("local", domain in local_domains),
                                           ("national", domain in national)) if ok)
        rows.append({"domain": domain, "source": source, "dns": sorted(tl.allowed_dns(domain)),
                     "next_hop": f"{hop.host}:{hop.port}" if hop else None})
    if args.json:
        print(json.dumps({"domains": rows, "cas": [_ca_label(p) for p in tl.ca_pems],
                          "whitelist_domains": len(national)}, indent=2))
        return 0
    for row in rows:
        print(f"{row['domain']}  [{row['source']}]"
              + (f"  next hop {row['next_hop']}" if row["next_hop"] else "  next hop: DNS MX"))
        for dn in row["dns"]:
            print(f"    DN {dn}")
    print(f"{len(rows)} domain(s); national whitelist: {len(national)} domain(s)")
    for pem in tl.ca_pems:
        print(f"CA {_ca_label(pem)}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    space = _space(config, file=Path(args.file) if args.file else None, url=args.url or "")
    report = asyncio.run(space.refresh())
    if not report.ok:
        print(f"Whitelist not updated ({report.error}); keeping the last good copy "
              f"({report.domains} domains)")
        return 1
    print(f"Whitelist loaded: {report.domains} domains")
    if report.changes is not None:
        lines = describe_diff(report.changes)
        print("\n".join(lines) if lines else "No change")
    return 0


def register(sub: Subparsers) -> None:
    ts = command_group(sub, "trust", help="operators of the trust space")
    p = add_command(ts, "add", _add, help="trust an operator domain (and its CA, DNs, next hop)")
    p.add_argument("--domain", required=True)
    p.add_argument("--ca", action="append", help="CA certificate (PEM file) to trust")
    p.add_argument("--dn", action="append", help="certificate subject DN allowed to send")
    p.add_argument("--mx", help="fixed next hop HOST:PORT instead of DNS MX")
    p = add_command(ts, "list", _list, help="show the trust list (local entries and whitelist)")
    p.add_argument("--json", action="store_true")
    p = add_command(ts, "remove", _remove, help="remove a local domain entry or a trusted CA")
    p.add_argument("--domain")
    p.add_argument("--ca", help="part of the CA subject or fingerprint")
    p = add_command(ts, "refresh", _refresh,
                    help="load the national whitelist now, print the changes")
    p.add_argument("--file", help="whitelist XML file (instead of the configured source)")
    p.add_argument("--url", help="whitelist HTTPS URL (instead of the configured source)")
