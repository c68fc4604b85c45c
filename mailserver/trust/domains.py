"""Domain-name normalisation shared by the trust-space modules.

Domains are compared in their ASCII (A-label) form, lower-cased, without a
trailing dot: ``Hôpital.Example.FR.`` becomes ``xn--hpital-ixa.example.fr``
(IDNA 2008 with the UTS #46 mapping, RFC 5891 / UTS #46 section 4).
"""

from __future__ import annotations

import re

import idna

__all__ = ["InvalidDomainError", "normalise_domain"]

# RFC 1035 2.3.1 "preferred name syntax" (LDH labels), RFC 1123 2.1 digits first.
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidDomainError(ValueError):
    """A string that is not a usable DNS domain name."""


def normalise_domain(name: str) -> str:
    """Return the canonical A-label form of ``name``.

    Args:
        name: a domain name, in U-label or A-label form, any case.

    Returns:
        The lower-case ASCII form without trailing dot.

    Raises:
        InvalidDomainError: empty, too long, bad label or not IDNA-encodable.
    """
    text = name.strip().rstrip(".")
    if not text or len(text) > 253:
        raise InvalidDomainError("empty or too long domain name")
    if text.isascii():
        ascii_name = text.lower()
    else:
        try:
            ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidDomainError("domain name is not IDNA-encodable") from exc
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        raise InvalidDomainError("domain name has an invalid label")
    if len(ascii_name) > 253:
        raise InvalidDomainError("domain name too long")
    return ascii_name
