"""The national whitelist: ``parse_whitelist`` raises only ``WhitelistError``."""

from __future__ import annotations

from mailserver.trust.whitelist import WhitelistError, diff, parse_whitelist


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    try:
        whitelist = parse_whitelist(data)
    except WhitelistError:
        return
    for domain in whitelist.domains:
        whitelist.dns_for(domain)
    assert diff(whitelist, whitelist).empty
