"""``mssante dkim show | prepare SELECTOR | rotate``: DKIM keys and their DNS records."""

from __future__ import annotations

import argparse

from mailserver.cli.common import Subparsers, add_command, command_group, load_config
from mailserver.dkim.keys import load_rotation, prepare_next, promote_next
from mailserver.dkim.signing import DkimError, dns_txt_records
from mailserver.errors import ValidationError

__all__ = ["register"]


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    try:
        rotation = load_rotation(config)
    except (DkimError, OSError) as exc:
        raise ValidationError(f"cannot read the DKIM keys: {exc}") from exc
    domains = [config.domain, config.patient_domain, *config.extra_domains]
    print(f"; DKIM keys: current selector {rotation.current.selector}"
          + (f", next {rotation.next.selector}" if rotation.next else ""))
    print("; rsa-sha256 (RSA-2048) and ed25519-sha256 (RFC 8463): publish both records")
    for domain in domains:
        for line in dns_txt_records(rotation, domain):
            print(line)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    try:
        rotation = prepare_next(config, args.selector)
    except (DkimError, OSError) as exc:
        raise ValidationError(str(exc)) from exc
    print(f"Generated selector {args.selector}; publish its records, then run "
          "'mssante dkim rotate':")
    assert rotation.next is not None
    for line in dns_txt_records(rotation.next, config.domain):
        print(line)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    try:
        rotation = promote_next(config)
    except (DkimError, OSError) as exc:
        raise ValidationError(str(exc)) from exc
    print(f"Selector {rotation.current.selector} now signs; keep the old records published "
          "a few days for messages in transit")
    return 0


def register(sub: Subparsers) -> None:
    ds = command_group(sub, "dkim", help="DKIM signing keys")
    add_command(ds, "show", _show, help="print the DNS TXT records to publish")
    p = add_command(ds, "prepare", _prepare, help="generate the next selector's keys")
    p.add_argument("selector")
    add_command(ds, "rotate", _rotate, help="make the prepared selector current")
