"""The operator trust list: who may talk to us over SMTP, and how we reach them.

Theory of operation
-------------------
A :class:`TrustList` merges two sources:

* the **national whitelist** (:mod:`.whitelist`): operator domains and the
  subject DNs of the certificates allowed to send for them;
* **local entries** (:class:`LocalTrust`, edited by ``mssante trust add``):
  extra domains, extra DNs, an optional fixed next hop per domain, and the
  trusted CA certificates (IGC-Santé in production, a test CA elsewhere).

The union is taken: a domain is trusted if either source lists it, and its
allowed DNs are the DNs of both sources. The local part is persisted as a
small JSON document, replaced atomically (write to a temporary file in the
same directory, fsync, rename).

Inbound, a peer is accepted when its client certificate chains to a trusted
CA (checked by OpenSSL, :func:`make_server_context`; at port 25 the verdict is
applied after the handshake, see :mod:`.askcert`) **and** its subject DN is
listed for the sending domain (:meth:`TrustList.dn_allowed`).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from mailserver.files import atomic_write

from .askcert import ask_client_certificate
from .dn import DistinguishedName, DnParseError, dn_from_name, parse_dn
from .domains import InvalidDomainError, normalise_domain
from .whitelist import Whitelist

__all__ = [
    "CaSource",
    "LocalDomain",
    "LocalTrust",
    "NextHop",
    "TrustList",
    "TrustListError",
    "dumps_local",
    "load_local",
    "loads_local",
    "make_client_context",
    "make_server_context",
    "save_local",
]

_FORMAT_VERSION = 1

#: TLS 1.2 suites: forward secret AEAD only (TLS 1.3 suites are OpenSSL's defaults).
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!MD5:!DSS"

#: CA material: PEM text, PEM bytes, a path to a PEM bundle, or several PEM texts.
CaSource = str | bytes | os.PathLike[str] | Sequence[str]


class TrustListError(Exception):
    """Invalid local trust data (bad JSON, bad domain, bad DN, bad PEM)."""


@dataclass(frozen=True, slots=True)
class NextHop:
    """A fixed SMTP next hop for a domain (bypasses MX lookup)."""

    host: str
    port: int = 25


@dataclass(frozen=True, slots=True)
class LocalDomain:
    """A locally configured operator domain.

    Attributes:
        domain: normalised domain name.
        dns: certificate subject DNs allowed to send for it.
        next_hop: fixed next hop, or None for MX resolution.
    """

    domain: str
    dns: tuple[str, ...] = ()
    next_hop: NextHop | None = None


def _check_dn(dn: str) -> str:
    try:
        parse_dn(dn)
    except DnParseError as exc:
        raise TrustListError(f"invalid certificate DN: {exc}") from exc
    return dn.strip()


def _check_domain(domain: str) -> str:
    try:
        return normalise_domain(domain)
    except InvalidDomainError as exc:
        raise TrustListError(f"invalid domain {domain!r}: {exc}") from exc


def _check_pem(pem: str) -> str:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise TrustListError("invalid CA certificate PEM") from exc
    if not certs:
        raise TrustListError("no certificate in PEM")
    return pem.strip() + "\n"


@dataclass(frozen=True, slots=True)
class LocalTrust:
    """The locally edited part of the trust list (immutable; edits return copies).

    Attributes:
        domains: local domain entries, at most one per domain.
        ca_pems: trusted CA certificates, PEM text each.
    """

    domains: tuple[LocalDomain, ...] = ()
    ca_pems: tuple[str, ...] = ()

    def get(self, domain: str) -> LocalDomain | None:
        """The entry of ``domain`` (any case / U-label form), or None."""
        wanted = _check_domain(domain)
        return next((d for d in self.domains if d.domain == wanted), None)

    def with_domain(
        self, domain: str, dns: Iterable[str] = (), next_hop: NextHop | None = None
    ) -> LocalTrust:
        """Add a domain, or add DNs / set the next hop of an existing one.

        Raises:
            TrustListError: invalid domain name or DN.
        """
        name = _check_domain(domain)
        new_dns = tuple(_check_dn(dn) for dn in dns)
        existing = self.get(name)
        if existing is None:
            entry = LocalDomain(name, tuple(dict.fromkeys(new_dns)), next_hop)
            return replace(self, domains=(*self.domains, entry))
        merged = LocalDomain(
            name,
            tuple(dict.fromkeys((*existing.dns, *new_dns))),
            next_hop if next_hop is not None else existing.next_hop,
        )
        return replace(
            self, domains=tuple(merged if d.domain == name else d for d in self.domains)
        )

    def without_domain(self, domain: str) -> LocalTrust:
        """Remove a domain entry (no-op if absent)."""
        name = _check_domain(domain)
        return replace(self, domains=tuple(d for d in self.domains if d.domain != name))

    def with_ca(self, pem: str) -> LocalTrust:
        """Add a trusted CA certificate (PEM); duplicates are ignored.

        Raises:
            TrustListError: the text holds no valid certificate.
        """
        clean = _check_pem(pem)
        if clean in self.ca_pems:
            return self
        return replace(self, ca_pems=(*self.ca_pems, clean))


def dumps_local(local: LocalTrust) -> str:
    """Serialise the local trust data to JSON text."""
    doc: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "domains": [
            {
                "domain": d.domain,
                "dns": list(d.dns),
                **(
                    {"next_hop": {"host": d.next_hop.host, "port": d.next_hop.port}}
                    if d.next_hop
                    else {}
                ),
            }
            for d in local.domains
        ],
        "ca_certificates": list(local.ca_pems),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def loads_local(text: str) -> LocalTrust:
    """Parse JSON text produced by :func:`dumps_local`.

    Raises:
        TrustListError: not JSON, wrong shape or version, invalid values.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TrustListError("local trust file is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("version") != _FORMAT_VERSION:
        raise TrustListError("unsupported local trust file version")
    local = LocalTrust()
    try:
        for item in doc.get("domains", []):
            hop = item.get("next_hop")
            next_hop = None
            if hop is not None:
                port = hop.get("port", 25)
                if not isinstance(port, int) or not 0 < port < 65536:
                    raise TrustListError("invalid next-hop port")
                next_hop = NextHop(str(hop["host"]), port)
            dns = item.get("dns", [])
            if not isinstance(dns, list) or not all(isinstance(x, str) for x in dns):
                raise TrustListError("dns must be a list of strings")
            local = local.with_domain(str(item["domain"]), dns, next_hop)
        for pem in doc.get("ca_certificates", []):
            local = local.with_ca(str(pem))
    except (KeyError, TypeError, AttributeError) as exc:
        raise TrustListError("malformed local trust file") from exc
    return local


def load_local(path: str | os.PathLike[str]) -> LocalTrust:
    """Read the local trust file; a missing file is an empty :class:`LocalTrust`.

    Raises:
        TrustListError: unreadable or invalid content.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return LocalTrust()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustListError("cannot read local trust file") from exc
    return loads_local(text)


def save_local(path: str | os.PathLike[str], local: LocalTrust) -> None:
    """Write the local trust file atomically (temp file, fsync, rename)."""
    atomic_write(Path(path), dumps_local(local).encode("utf-8"), mode=0o644)


@dataclass(frozen=True)
class TrustList:
    """Merged view of local entries and the national whitelist.

    Attributes:
        local: local entries and trusted CAs.
        national: the last good national whitelist, or None.
    """

    local: LocalTrust = field(default_factory=LocalTrust)
    national: Whitelist | None = None
    _dns: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _canon: Mapping[str, frozenset[DistinguishedName]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        dns: dict[str, set[str]] = {}
        if self.national is not None:
            for entry in self.national.entries:
                bucket = dns.setdefault(entry.domain, set())
                if entry.certificate_dn:
                    bucket.add(entry.certificate_dn)
        for local in self.local.domains:
            dns.setdefault(local.domain, set()).update(local.dns)
        canon: dict[str, frozenset[DistinguishedName]] = {}
        for domain, values in dns.items():
            parsed = set()
            for value in values:
                try:
                    parsed.add(parse_dn(value))
                except DnParseError:
                    continue  # an unparsable listed DN authorises nobody
            canon[domain] = frozenset(parsed)
        object.__setattr__(self, "_dns", {k: frozenset(v) for k, v in dns.items()})
        object.__setattr__(self, "_canon", canon)

    @staticmethod
    def _key(domain: str) -> str | None:
        try:
            return normalise_domain(domain)
        except InvalidDomainError:
            return None

    @property
    def domains(self) -> frozenset[str]:
        """All trusted domains (normalised)."""
        return frozenset(self._dns)

    @property
    def ca_pems(self) -> tuple[str, ...]:
        """Trusted CA certificates (PEM)."""
        return self.local.ca_pems

    def is_trusted_domain(self, domain: str) -> bool:
        """True if ``domain`` (exactly, no parent matching) is in the trust space."""
        key = self._key(domain)
        return key is not None and key in self._dns

    def allowed_dns(self, domain: str) -> frozenset[str]:
        """Certificate subject DNs (as listed) allowed to send for ``domain``."""
        key = self._key(domain)
        return self._dns.get(key, frozenset()) if key is not None else frozenset()

    def dn_allowed(self, domain: str, peer_cert: x509.Certificate | x509.Name) -> bool:
        """Tell whether the peer certificate's subject is listed for ``domain``.

        Chain validation is the TLS layer's job; this only compares DNs
        (order-, case- and spacing-insensitively, see :mod:`.dn`).
        """
        key = self._key(domain)
        if key is None:
            return False
        subject = peer_cert.subject if isinstance(peer_cert, x509.Certificate) else peer_cert
        return dn_from_name(subject) in self._canon.get(key, frozenset())

    def next_hop(self, domain: str) -> NextHop | None:
        """The fixed next hop configured locally for ``domain``, if any."""
        key = self._key(domain)
        entry = next((d for d in self.local.domains if d.domain == key), None)
        return entry.next_hop if entry else None

    def server_context(
        self, cert: str | os.PathLike[str], key: str | os.PathLike[str]
    ) -> ssl.SSLContext:
        """Inbound context requiring a client certificate from a trusted CA."""
        return make_server_context(cert, key, self.ca_pems, require_client_cert=True)

    def client_context(
        self, cert: str | os.PathLike[str], key: str | os.PathLike[str]
    ) -> ssl.SSLContext:
        """Outbound context presenting our certificate, verifying the peer."""
        return make_client_context(cert, key, self.ca_pems)


def _load_cas(ctx: ssl.SSLContext, cas: CaSource | None) -> bool:
    """Load CA material into ``ctx``; return False when there was none."""
    if cas is None:
        return False
    if isinstance(cas, bytes):
        cas = cas.decode("ascii")
    if isinstance(cas, str) and "-----BEGIN" in cas:
        ctx.load_verify_locations(cadata=cas)
        return True
    if isinstance(cas, (str, os.PathLike)):
        ctx.load_verify_locations(cafile=os.fspath(cas))
        return True
    pems = [p for p in cas if p.strip()]
    if not pems:
        return False
    ctx.load_verify_locations(cadata="\n".join(pems))
    return True


def _harden(ctx: ssl.SSLContext) -> None:
    # Transport rules of the trust space: TLS 1.2 minimum (domain README 4).
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(_TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def make_server_context(
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
    cas: CaSource | None,
    require_client_cert: bool = True,
    verify_after_handshake: bool = False,
) -> ssl.SSLContext:
    """Build the inbound (server-side) TLS context.

    Args:
        cert: path to our certificate chain (PEM).
        key: path to its private key (PEM).
        cas: CAs that client certificates must chain to.
        require_client_cert: refuse handshakes without a valid client
            certificate (operator-to-operator SMTP); when False, a presented
            certificate is still verified (submission, IMAP).
        verify_after_handshake: with ``require_client_cert`` False, complete the handshake
            with any client certificate; the verdict of the chain check is read afterwards
            with :func:`.askcert.chain_problem` (Postfix ``smtpd_tls_ask_ccert``).

    Returns:
        A server ``SSLContext``, TLS 1.2 minimum, AEAD ciphers.

    Raises:
        ValueError: ``require_client_cert`` without any CA.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.load_cert_chain(os.fspath(cert), os.fspath(key))
    has_cas = _load_cas(ctx, cas)
    if require_client_cert:
        if not has_cas:
            raise ValueError("a client certificate is required but no CA is trusted")
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif has_cas and verify_after_handshake:
        ask_client_certificate(ctx)
    else:
        ctx.verify_mode = ssl.CERT_OPTIONAL if has_cas else ssl.CERT_NONE
    return ctx


def make_client_context(
    cert: str | os.PathLike[str] | None,
    key: str | os.PathLike[str] | None,
    cas: CaSource | None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """Build the outbound (client-side) TLS context.

    Args:
        cert: path to our certificate chain, presented to the peer (or None).
        key: path to its private key.
        cas: CAs the peer's server certificate must chain to; None uses the
            system store.
        check_hostname: verify the peer name against its certificate (pass
            ``server_hostname`` when connecting).

    Returns:
        A client ``SSLContext``, TLS 1.2 minimum, peer always verified.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert is not None:
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
    if not _load_cas(ctx, cas):
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return ctx
