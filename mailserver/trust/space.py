"""The running trust space: local trust file + national whitelist, kept fresh.

Theory of operation
-------------------
:class:`TrustSpaceService` holds the current :class:`~.trustlist.TrustList`
(an immutable value, swapped atomically) and answers the questions the SMTP
front end and the outbound queue ask: is a domain trusted, which certificate
DNs may send for it, where to deliver, which TLS contexts to use.

Sources:

* the **local trust file** (JSON, edited by ``mssante trust add/remove``) is
  re-read whenever its modification time changes (checked at most once a
  second, on use), so CLI edits apply to a running server;
* the **national whitelist** (``ListeBlancheMSSante`` XML) comes from a file
  or an HTTPS URL and is refreshed every ``refresh_seconds``. A copy of the
  last document that parsed is kept in the data directory
  (``last_good_file``) and loaded at start, so a failed download or a
  malformed file never empties the trust space: the previous list stays in
  force and the failure is logged. Each successful refresh logs what changed
  (:func:`~.whitelist.diff`). Whoever refreshes (``mssante trust refresh``, or another
  server process) replaces that copy; like the local file, its change is noticed within a
  second (on use, and by :meth:`TrustSpaceService.run`) and the new copy is parsed in a thread
  (~1 s for the 6,500-entry national file) and swapped in, so every running process follows.

TLS contexts are cached per trust list version: a new CA added locally
applies to the next connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mailserver.dkim.signing import TempDnsError
from mailserver.files import atomic_write

from .resolver import DnsResolver, Resolver, StaticResolver, next_hops
from .trustlist import (
    LocalTrust,
    NextHop,
    TrustList,
    TrustListError,
    load_local,
    make_client_context,
    make_server_context,
)
from .whitelist import Whitelist, WhitelistDiff, WhitelistError, diff, parse_whitelist

__all__ = [
    "Fetcher",
    "RefreshReport",
    "TrustSpaceService",
    "describe_diff",
    "dns_txt_lookup",
    "resolver_from_zone_file",
    "zone_txt_lookup",
]

log = logging.getLogger(__name__)

#: ``url -> document bytes``; raises on any failure.
Fetcher = Callable[[str], Awaitable[bytes]]

_MAX_WHITELIST = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """Outcome of one whitelist refresh.

    Attributes:
        ok: the new document parsed and is now in force.
        error: why the refresh failed (the previous list stays), or None.
        changes: what changed compared with the previous list (None on failure
            or when there was no previous list).
        domains: number of domains in force after the refresh.
    """

    ok: bool
    error: str | None
    changes: WhitelistDiff | None
    domains: int


def describe_diff(changes: WhitelistDiff) -> list[str]:
    """Human-readable lines describing a whitelist diff (domain names only)."""
    lines = [f"+ {d}" for d in sorted(changes.added_domains)]
    lines += [f"- {d}" for d in sorted(changes.removed_domains)]
    for domain, dns in sorted(changes.dn_added.items()):
        lines += [f"+ {domain} DN {dn}" for dn in sorted(dns)]
    for domain, dns in sorted(changes.dn_removed.items()):
        lines += [f"- {domain} DN {dn}" for dn in sorted(dns)]
    return lines


async def _https_fetch(url: str) -> bytes:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
        if resp.status != 200:
            raise OSError(f"HTTP {resp.status}")
        data = await resp.content.read(_MAX_WHITELIST + 1)
        if len(data) > _MAX_WHITELIST:
            raise OSError("whitelist document too large")
        return data


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


class TrustSpaceService:
    """Current trust list, refreshed from the local file and the national whitelist."""

    def __init__(
        self,
        *,
        local_file: Path,
        last_good_file: Path,
        whitelist_file: Path | None = None,
        whitelist_url: str = "",
        refresh_seconds: float = 6 * 3600,
        resolver: Resolver | None = None,
        fetch: Fetcher | None = None,
    ) -> None:
        """Create the service and load what is on disk (local file, last good whitelist).

        Args:
            local_file: the local trust JSON file (missing = empty).
            last_good_file: where the last whitelist that parsed is kept.
            whitelist_file: the national whitelist as a file, or None.
            whitelist_url: the national whitelist as an HTTPS URL, or "".
            refresh_seconds: interval of :meth:`run`.
            resolver: DNS seam for next hops (default: system DNS).
            fetch: HTTPS download seam (default: aiohttp, certificate verified).
        """
        self.local_file = local_file
        self.last_good_file = last_good_file
        self.whitelist_file = whitelist_file
        self.whitelist_url = whitelist_url
        self.refresh_seconds = refresh_seconds
        self.resolver: Resolver = resolver or DnsResolver()
        self._fetch = fetch or _https_fetch
        self._local_mtime: float | None = None
        self._good_stamp: tuple[int, int] | None = None
        self._good_task: asyncio.Task[None] | None = None
        self._checked = 0.0
        self._national: Whitelist | None = None
        self._list = TrustList()
        self._version = 0
        self._ctx_cache: dict[tuple[str, int], ssl.SSLContext] = {}
        self._load_last_good()
        self._reload_local(force=True)

    # -- loading --------------------------------------------------------------------------

    def _load_last_good(self) -> None:
        self._good_stamp = self._last_good_stamp()
        if not self.last_good_file.exists():
            return
        try:
            self._national = parse_whitelist(self.last_good_file)
        except WhitelistError as exc:
            log.warning("trust: last good whitelist copy unreadable: %s", exc)

    def _last_good_stamp(self) -> tuple[int, int] | None:
        """Identity of the last good copy on disk (it is replaced atomically: new inode)."""
        try:
            st = self.last_good_file.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def _watch_last_good(self) -> None:
        """Start loading the last good copy if another process replaced it."""
        stamp = self._last_good_stamp()
        if stamp is None or stamp == self._good_stamp:
            return
        if self._good_task is not None and not self._good_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (command line): parse here
            self._load_last_good()
            self._set(self._list.local, self._national)
            return
        self._good_task = loop.create_task(self._reload_last_good(stamp),
                                           name="trust-last-good")

    async def _reload_last_good(self, stamp: tuple[int, int]) -> None:
        try:
            data = await asyncio.to_thread(self.last_good_file.read_bytes)
            new = await asyncio.to_thread(parse_whitelist, data)
        except (OSError, WhitelistError) as exc:
            log.warning("trust: replaced whitelist copy unreadable, keeping previous: %s", exc)
            self._good_stamp = stamp
            return
        self._good_stamp = stamp
        self._national = new
        self._set(self._list.local, new)
        log.info("trust: whitelist copy replaced by another process, %d domains",
                 len(new.domains))

    async def poll(self) -> None:
        """Pick up what other processes changed (local file, last good whitelist) now."""
        self._checked = time.monotonic()
        self._reload_local()
        self._watch_last_good()
        if self._good_task is not None:
            await self._good_task

    def _reload_local(self, force: bool = False) -> None:
        try:
            mtime: float | None = self.local_file.stat().st_mtime_ns / 1e9
        except FileNotFoundError:
            mtime = None
        if not force and mtime == self._local_mtime:
            return
        try:
            local = load_local(self.local_file)
        except TrustListError as exc:
            # Keep the entries in force: a half-edited file must not empty the trust space.
            log.error("trust: local trust file invalid, keeping previous: %s", exc)
            self._local_mtime = mtime
            return
        self._local_mtime = mtime
        self._set(local, self._national)

    def _set(self, local: LocalTrust, national: Whitelist | None) -> None:
        self._list = TrustList(local=local, national=national)
        self._version += 1
        self._ctx_cache.clear()

    @property
    def trustlist(self) -> TrustList:
        """The trust list in force (local file re-read if it changed)."""
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self._reload_local()
            self._watch_last_good()
        return self._list

    def reload(self) -> None:
        """Re-read the local trust file now."""
        self._checked = time.monotonic()
        self._reload_local(force=True)

    async def refresh(self) -> RefreshReport:
        """Fetch and parse the national whitelist; keep the last good copy on failure."""
        source = self.whitelist_url or (str(self.whitelist_file) if self.whitelist_file else "")
        if not source:
            return RefreshReport(False, "no whitelist source configured", None,
                                 len(self._national.domains) if self._national else 0)
        try:
            if self.whitelist_url:
                data = await self._fetch(self.whitelist_url)
            else:
                assert self.whitelist_file is not None
                data = await asyncio.to_thread(self.whitelist_file.read_bytes)
            new = await asyncio.to_thread(parse_whitelist, data)
            if not new.entries:
                raise WhitelistError("the document lists no domain")
        except (OSError, WhitelistError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("trust: whitelist refresh failed, keeping last good copy: %s", error)
            return RefreshReport(False, error, None,
                                 len(self._national.domains) if self._national else 0)
        except Exception as exc:  # noqa: BLE001 - aiohttp errors and the like
            error = f"{type(exc).__name__}: {exc}"
            log.warning("trust: whitelist refresh failed, keeping last good copy: %s", error)
            return RefreshReport(False, error, None,
                                 len(self._national.domains) if self._national else 0)
        changes = diff(self._national, new) if self._national is not None else None
        await asyncio.to_thread(_atomic_write, self.last_good_file, data)
        self._good_stamp = self._last_good_stamp()  # our own copy: nothing to reload
        self._national = new
        self._set(self._list.local, new)
        if changes is None:
            log.info("trust: whitelist loaded, %d domains", len(new.domains))
        elif changes.empty:
            log.info("trust: whitelist refreshed, unchanged (%d domains)", len(new.domains))
        else:
            log.info("trust: whitelist refreshed: %d domains added, %d removed, DN changes in %d",
                     len(changes.added_domains), len(changes.removed_domains),
                     len(set(changes.dn_added) | set(changes.dn_removed)))
            for line in describe_diff(changes):
                log.info("trust: whitelist change %s", line)
        for rejected in new.rejected:
            log.warning("trust: whitelist entry ignored: %s (%s)", rejected.name, rejected.reason)
        return RefreshReport(True, None, changes, len(new.domains))

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh the whitelist now, then every ``refresh_seconds``, until ``stop``; every
        second, pick up what other processes changed (see :meth:`poll`)."""
        has_source = bool(self.whitelist_url or self.whitelist_file)
        due = time.monotonic()
        while not stop.is_set():
            if has_source and time.monotonic() >= due:
                await self.refresh()
                due = time.monotonic() + self.refresh_seconds
            await self.poll()
            wait = min(1.0, due - time.monotonic()) if has_source else 1.0
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, wait))
            except TimeoutError:
                pass

    # -- questions ------------------------------------------------------------------------

    def is_trusted_domain(self, domain: str) -> bool:
        """True if ``domain`` belongs to the trust space (delivery.TrustSpace protocol)."""
        return self.trustlist.is_trusted_domain(domain)

    @property
    def empty(self) -> bool:
        """True when no remote domain is trusted."""
        return not self.trustlist.domains

    def dn_allowed(self, domain: str, cert: x509.Certificate | x509.Name) -> bool:
        """Is the certificate's subject DN listed for ``domain``?"""
        return self.trustlist.dn_allowed(domain, cert)

    def dn_allowed_any(self, cert: x509.Certificate | x509.Name) -> bool:
        """Is the certificate's subject DN listed for any trusted domain (null sender)?"""
        tl = self.trustlist
        return any(tl.dn_allowed(d, cert) for d in tl.domains)

    def next_hop(self, domain: str) -> NextHop | None:
        """A fixed next hop configured for ``domain``."""
        return self.trustlist.next_hop(domain)

    async def next_hops(self, domain: str, port: int = 25) -> list[tuple[str, int]]:
        """Ordered (host, port) hops: fixed hop, else MX, else A/AAAA (RFC 5321 5.1)."""
        return await next_hops(domain, self.trustlist, self.resolver, port)

    def server_context(self, cert: Path, key: Path, *, require_client_cert: bool
                       ) -> ssl.SSLContext:
        """Inbound context: a client certificate is requested, and any is accepted.

        The handshake completes whatever the certificate (Postfix ``smtpd_tls_ask_ccert``);
        OpenSSL's verdict on its chain against the trusted CAs is read afterwards
        (:func:`.askcert.chain_problem`), so the SMTP layer refuses at MAIL FROM with a 5xx
        that says why; ``require_client_cert`` is enforced there too.
        """
        tl = self.trustlist
        key_ = ("server", self._version)
        ctx = self._ctx_cache.get(key_)
        if ctx is None:
            ctx = make_server_context(cert, key, tl.ca_pems or None, require_client_cert=False,
                                      verify_after_handshake=True)
            self._ctx_cache[key_] = ctx
        return ctx

    def client_context(self, cert: Path, key: Path) -> ssl.SSLContext:
        """Outbound context: our certificate; peer verified against the trusted CAs only."""
        tl = self.trustlist
        key_ = ("client", self._version)
        ctx = self._ctx_cache.get(key_)
        if ctx is None:
            if not tl.ca_pems:
                raise TrustListError("no CA is trusted: cannot verify any peer")
            ctx = make_client_context(cert, key, tl.ca_pems)
            self._ctx_cache[key_] = ctx
        return ctx


def resolver_from_zone_file(path: Path, timeout: float = 5.0) -> StaticResolver:
    """A :class:`StaticResolver` from a JSON zone file (see :class:`StaticResolver`)."""
    import json

    zone = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(zone, dict):
        raise ValueError("zone file must hold a JSON object")
    return StaticResolver(zone)


def zone_txt_lookup(path: Path) -> Callable[[str], str | None]:
    """A DKIM TXT lookup answering from the ``TXT`` records of a JSON zone file.

    ``{"mss1-rsa._domainkey.example.fr": {"TXT": ["v=DKIM1; k=rsa; p=..."]}}``; several
    strings of one record are concatenated (RFC 6376 3.6.2.2). The file is re-read on change.
    """
    import json

    state: dict[str, object] = {"mtime": None, "zone": {}}

    def lookup(name: str) -> str | None:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if mtime != state["mtime"]:
            raw = json.loads(path.read_text(encoding="utf-8"))
            state["zone"] = {k.lower().rstrip("."): v for k, v in raw.items()}
            state["mtime"] = mtime
        zone = state["zone"]
        assert isinstance(zone, dict)
        rrsets = zone.get(name.lower().rstrip("."), {})
        values = rrsets.get("TXT") if isinstance(rrsets, dict) else None
        if not values:
            return None
        first = values[0]
        return "".join(first) if isinstance(first, list) else str(first)

    return lookup


def dns_txt_lookup(timeout: float = 5.0) -> Callable[[str], str | None]:
    """A DKIM TXT lookup through the system resolver (blocking: call it in a thread).

    Raises ``mailserver.dkim.signing.TempDnsError`` on a temporary failure.
    """
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout

    def lookup(name: str) -> str | None:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as exc:
            raise TempDnsError(type(exc).__name__) from exc
        for rdata in answer:
            return b"".join(rdata.strings).decode("ascii", "replace")
        return None

    return lookup
