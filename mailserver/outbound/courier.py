"""Outbound delivery to other operators of the trust space.

Theory of operation
-------------------
:class:`Courier` delivers claimed queue entries (:mod:`mailserver.outbound.queue`). Recipients are
grouped by domain; each domain's next hops come from the trust list (fixed ``--mx`` hop) or DNS
(MX, then A/AAAA; RFC 5321 5.1). A :class:`PeerPool` keeps one open connection per domain for a
while (``idle_seconds``) so consecutive messages reuse it; MAIL FROM and the RCPT TO commands
are sent as one pipelined group when the peer offers PIPELINING (RFC 2920).

Transport security, always (domain README 4): STARTTLS is mandatory (no plaintext fallback,
RFC 3207), the peer's certificate must chain to a CA of the trust list and name the host
(``check_hostname``), its subject DN must be listed for the recipient domain when the trust list
lists DNs for it, we present our own certificate, and only TLS 1.2+ with AEAD suites is
negotiated (:func:`mailserver.trust.trustlist.make_client_context`). A peer failing any of these
is treated like an unreachable one: retried, then bounced.

Outcomes per recipient: 2xx delivered; 5xx failed at once; 4xx, connection and TLS errors are
retried with exponential back-off until the queue lifetime expires. Reports go to the sender
(RFC 3464 via :mod:`mailserver.reports.dsn`): failure (per NOTIFY), a delay warning once after
``delay_warning_seconds``, and "relayed" for NOTIFY=SUCCESS when the peer does not offer DSN
(otherwise the RFC 3461 parameters are passed on and the peer reports).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from mailserver import metrics
from mailserver.config import Config
from mailserver.outbound.client import SmtpClient, SmtpClientError
from mailserver.outbound.queue import ClaimedMessage, OutboundQueue, QueuedRecipient, backoff
from mailserver.reports import dsn as D
from mailserver.trust.resolver import ResolverError
from mailserver.trust.space import TrustSpaceService
from mailserver.trust.trustlist import TrustListError

__all__ = ["Courier", "PeerPool", "RcptResult", "ReportSink", "TempFailure"]

log = logging.getLogger(__name__)

#: Where reports (DSN) go: ``(recipient, message bytes)``; delivered with a null sender.
ReportSink = Callable[[str, bytes], Awaitable[None]]


class TempFailure(Exception):
    """A transient problem reaching or talking to the peer (retry later)."""


class PermFailure(Exception):
    """The domain cannot receive mail (no hop, null MX)."""


@dataclass(frozen=True)
class RcptResult:
    """One recipient's outcome of an attempt: ``ok``, ``perm`` or ``temp``."""

    kind: str
    code: int
    text: str
    mta: str | None = None


def _xtext(value: str) -> str:
    # RFC 3461 4: xtext encodes '+', '=', controls and non-ASCII as +HH.
    out = []
    for ch in value:
        o = ord(ch)
        if 33 <= o <= 126 and ch not in "+=":
            out.append(ch)
        else:
            out.extend(f"+{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


class _Peer:
    """One verified SMTP connection to a domain's next hop."""

    def __init__(self, smtp: SmtpClient, host: str) -> None:
        self.smtp = smtp
        self.host = host
        self.used = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.smtp.alive

    def supports(self, ext: str) -> bool:
        return self.smtp.supports(ext)

    async def close(self) -> None:
        await self.smtp.quit()


class PeerPool:
    """Verified connections to peers, one per domain, reused while idle < ``idle_seconds``."""

    def __init__(self, config: Config, trust: TrustSpaceService, *,
                 idle_seconds: float = 30.0) -> None:
        self.config = config
        self.trust = trust
        self.idle_seconds = idle_seconds
        self._peers: dict[str, _Peer] = {}
        self.connections_opened = 0

    async def get(self, domain: str) -> _Peer:
        """A connection for ``domain``: reused if alive, else a new verified one."""
        peer = self._peers.get(domain)
        if peer is not None:
            if peer.alive and time.monotonic() - peer.used < self.idle_seconds:
                try:
                    if (await peer.smtp.rset()).code == 250:
                        return peer
                except SmtpClientError:  # stale: reconnect
                    pass
            await self.discard(domain)
        peer = await self._connect(domain)
        self._peers[domain] = peer
        return peer

    async def discard(self, domain: str) -> None:
        """Close and forget the connection of ``domain``."""
        peer = self._peers.pop(domain, None)
        if peer is not None:
            await peer.close()

    async def close_idle(self) -> None:
        """Close connections idle for longer than ``idle_seconds``."""
        now = time.monotonic()
        for domain, peer in list(self._peers.items()):
            if not peer.alive or now - peer.used >= self.idle_seconds:
                await self.discard(domain)

    async def close(self) -> None:
        """Close everything."""
        for domain in list(self._peers):
            await self.discard(domain)

    async def _connect(self, domain: str) -> _Peer:
        try:
            hops = await self.trust.next_hops(domain)
        except ResolverError as exc:
            raise TempFailure(f"DNS: {exc}") from exc
        if not hops:
            raise PermFailure("the domain accepts no mail (no MX and no address, or null MX)")
        cfg = self.config
        try:
            ctx = self.trust.client_context(cfg.path(cfg.tls.cert_file),
                                            cfg.path(cfg.tls.key_file))
        except TrustListError as exc:
            raise TempFailure(str(exc)) from exc
        errors = []
        for host, port in hops:
            smtp: SmtpClient | None = None
            try:
                smtp = await SmtpClient.connect(host, port, timeout=cfg.queue.connect_timeout,
                                                local_hostname=cfg.hostname)
                await smtp.ehlo()
                if not smtp.supports("STARTTLS"):
                    raise TempFailure(f"{host} does not offer STARTTLS")
                # RFC 3207: never fall back to plaintext; the context verifies chain and name.
                await smtp.starttls(ctx, server_hostname=host)
                self._check_peer(domain, smtp, host)
            except (TempFailure, SmtpClientError) as exc:
                if smtp is not None:
                    smtp.close()
                errors.append(f"{host}:{port}: {exc}")
                log.warning("outbound: cannot use %s:%d for %s: %s", host, port, domain,
                            str(exc)[:200])
                continue
            self.connections_opened += 1
            log.info("outbound: connected to %s:%d for %s", host, port, domain)
            return _Peer(smtp, host)
        raise TempFailure("; ".join(errors)[:500])

    def _check_peer(self, domain: str, smtp: SmtpClient, host: str) -> None:
        der = smtp.peer_certificate()
        if not der:
            raise TempFailure(f"{host}: no verified peer certificate")
        cert = x509.load_der_x509_certificate(der)
        tl = self.trust.trustlist
        if tl.allowed_dns(domain) and not tl.dn_allowed(domain, cert):
            raise TempFailure(f"{host}: certificate subject is not listed for {domain}")


async def _transaction(peer: _Peer, mail_from: str, rcpts: Sequence[QueuedRecipient],
                       raw: bytes, envid: str | None, ret: str | None) -> dict[int, RcptResult]:
    """One SMTP transaction (MAIL, RCPT..., DATA), pipelined when offered (RFC 2920)."""
    smtp = peer.smtp
    dsn = peer.supports("dsn")
    mail_opts = []
    if peer.supports("8bitmime"):
        mail_opts.append("BODY=8BITMIME")
    if peer.supports("size"):
        mail_opts.append(f"SIZE={len(raw)}")
    if dsn:
        if ret:
            mail_opts.append(f"RET={ret}")
        if envid:
            mail_opts.append(f"ENVID={_xtext(envid)}")
    lines = [" ".join([f"MAIL FROM:<{mail_from}>", *mail_opts])]
    for r in rcpts:
        opts = []
        if dsn and r.notify:
            opts.append(f"NOTIFY={r.notify}")
        if dsn and r.orcpt:
            kind, _, addr = r.orcpt.partition(";")
            opts.append(f"ORCPT={kind.strip()};{_xtext(addr.strip())}")
        lines.append(" ".join([f"RCPT TO:<{r.address}>", *opts]))
    results: dict[int, RcptResult] = {}
    if peer.supports("pipelining"):
        replies = await smtp.pipeline(lines)
    else:
        replies = []
        for line in lines:
            replies.append(await smtp.command(line))
            if replies[0].code >= 400:
                break
    first = replies[0]
    if first.code >= 400:
        kind = "perm" if first.code >= 500 else "temp"
        text = str(first)
        return {r.id: RcptResult(kind, first.code, f"MAIL FROM: {text}", peer.host)
                for r in rcpts}
    accepted = []
    if len(replies) < len(lines):  # MAIL refused without pipelining: handled above
        raise TempFailure("incomplete replies")
    for r, reply in zip(rcpts, replies[1:], strict=True):
        if reply.code < 300:
            accepted.append(r)
        else:
            kind = "perm" if reply.code >= 500 else "temp"
            results[r.id] = RcptResult(kind, reply.code, str(reply), peer.host)
    if not accepted:
        await smtp.rset()
        return results
    reply = await smtp.data(raw)
    if reply.code < 300:
        outcome = RcptResult("ok", reply.code, str(reply), peer.host)
    else:
        outcome = RcptResult("perm" if reply.code >= 500 else "temp", reply.code, str(reply),
                             peer.host)
    for r in accepted:
        results[r.id] = outcome
    return results


class Courier:
    """Delivers claimed messages and decides retries, bounces and warnings."""

    def __init__(self, config: Config, queue: OutboundQueue, trust: TrustSpaceService,
                 reports: ReportSink, *, pool: PeerPool | None = None) -> None:
        self.config = config
        self.queue = queue
        self.trust = trust
        self.reports = reports
        self.pool = pool or PeerPool(config, trust)

    async def deliver(self, claimed: ClaimedMessage) -> None:
        """Attempt every pending recipient of ``claimed`` once, then record and reschedule."""
        entry = claimed.entry
        groups: dict[str, list[QueuedRecipient]] = {}
        for r in claimed.pending:
            groups.setdefault(r.domain, []).append(r)
        results: dict[int, RcptResult] = {}
        dsn_capable: dict[str, bool] = {}
        for domain, rcpts in groups.items():
            if not self.trust.is_trusted_domain(domain):
                # The domain left the trust space while the message waited.
                for r in rcpts:
                    results[r.id] = RcptResult("perm", 550, "5.7.1 recipient domain is no "
                                                            "longer in the trust space")
                continue
            try:
                peer = await self.pool.get(domain)
                dsn_capable[domain] = peer.supports("dsn")
                got = await _transaction(peer, entry.mail_from, rcpts, claimed.raw,
                                         entry.envid, entry.ret)
                peer.used = time.monotonic()
            except PermFailure as exc:
                got = {r.id: RcptResult("perm", 550, str(exc)) for r in rcpts}
            except (TempFailure, SmtpClientError, OSError, TimeoutError) as exc:
                await self.pool.discard(domain)
                text = str(exc) or type(exc).__name__
                got = {r.id: RcptResult("temp", 451, text[:500]) for r in rcpts}
            results.update(got)
        await self._settle(claimed, results, dsn_capable)

    async def _settle(self, claimed: ClaimedMessage, results: dict[int, RcptResult],
                      dsn_capable: dict[str, bool]) -> None:
        entry = claimed.entry
        now = datetime.now(UTC)
        qcfg = self.config.queue
        expires = entry.created_at + timedelta(seconds=qcfg.lifetime_seconds)
        expired = now >= expires
        states: dict[int, tuple[str, str | None, str | None]] = {}
        failed: list[tuple[QueuedRecipient, RcptResult, D.FailureReason]] = []
        delayed: list[tuple[QueuedRecipient, RcptResult]] = []
        relayed: list[tuple[QueuedRecipient, RcptResult]] = []
        for r in claimed.pending:
            res = results.get(r.id)
            if res is None:
                continue
            if res.kind == "ok":
                states[r.id] = ("delivered", None, res.mta)
                if not dsn_capable.get(r.domain, False):
                    relayed.append((r, res))
                metrics.DELIVERY_ATTEMPTS.labels(r.domain, "delivered").inc()
                log.info("outbound: delivered queue=%s domain=%s", entry.token[:8], r.domain)
            elif res.kind == "perm" or expired:
                reason = (D.FailureReason.REMOTE_ERROR if res.kind == "perm"
                          else D.FailureReason.DELAYED)
                text = res.text if res.kind == "perm" else f"expired; last error: {res.text}"
                states[r.id] = ("failed", text, res.mta)
                failed.append((r, res, reason))
                metrics.DELIVERY_ATTEMPTS.labels(r.domain, "failed").inc()
                log.info("outbound: failed queue=%s domain=%s code=%d", entry.token[:8],
                         r.domain, res.code)
            else:
                states[r.id] = ("pending", res.text, res.mta)
                delayed.append((r, res))
                metrics.DELIVERY_ATTEMPTS.labels(r.domain, "deferred").inc()
                log.info("outbound: deferred queue=%s domain=%s error=%s", entry.token[:8],
                         r.domain, res.text[:200])
        if states:
            await self.queue.record(entry.id, states)
        still_pending = [r for r in claimed.pending if states.get(r.id, ("pending",))[0]
                         == "pending"]
        outcomes: list[D.RecipientOutcome] = []
        for r, res, reason in failed:
            status = "4.4.7" if res.kind != "perm" else _status_of(res)
            outcomes.append(self._outcome(r, res, D.Action.FAILED, reason, status, now))
        for r, res in relayed:
            outcomes.append(self._outcome(r, res, D.Action.RELAYED, D.FailureReason.DELIVERED,
                                          "2.0.0", now))
        warn = (bool(delayed) and not entry.delay_warned
                and now >= entry.created_at + timedelta(seconds=qcfg.delay_warning_seconds))
        if warn:
            for r, res in delayed:
                outcomes.append(self._outcome(r, res, D.Action.DELAYED, D.FailureReason.DELAYED,
                                              "4.4.1", now, until=expires))
        if outcomes:
            await self._report(claimed, outcomes, now)
        last_error = next((res.text for _, res in delayed), None)
        if still_pending:
            delay = backoff(entry.attempts, qcfg.base_retry_seconds, qcfg.max_retry_seconds)
            nxt = min(now + timedelta(seconds=delay), max(expires, now))
            await self.queue.reschedule(entry.id, next_attempt=nxt, error=last_error,
                                        delay_warned=True if warn else None)
        else:
            await self.queue.reschedule(entry.id, next_attempt=None, error=last_error,
                                        delay_warned=True if warn else None)

    def _outcome(self, r: QueuedRecipient, res: RcptResult, action: D.Action,
                 reason: D.FailureReason, status: str, now: datetime,
                 until: datetime | None = None) -> D.RecipientOutcome:
        notify = (frozenset(D.Notify(v) for v in r.notify.split(",") if v in D.Notify.__members__)
                  if r.notify else None)
        return D.RecipientOutcome(
            final_recipient=r.address, action=action, reason=reason, status=status,
            notify=notify, original_recipient=r.orcpt,
            diagnostic=f"smtp; {res.text}" if res.code else None,
            remote_mta=res.mta, last_attempt=now, will_retry_until=until)

    async def _report(self, claimed: ClaimedMessage, outcomes: list[D.RecipientOutcome],
                      now: datetime) -> None:
        entry = claimed.entry
        ret = D.Ret(entry.ret) if entry.ret in ("FULL", "HDRS") else None
        report = D.build_dsn(original=claimed.raw, envelope_sender=entry.mail_from,
                             outcomes=outcomes, reporting_mta=self.config.hostname,
                             our_domain=self.config.domain, envid=entry.envid, ret=ret,
                             arrival_date=entry.created_at, now=now)
        if report is None:
            return
        try:
            await self.reports(report.envelope_recipient, report.message)
        except Exception:  # noqa: BLE001 - a report must not block the queue
            log.exception("outbound: could not deliver a delivery report")


def _status_of(res: RcptResult) -> str:
    # Use the enhanced status code of the reply when there is one (RFC 3463).
    parts = res.text.split()
    for p in parts[1:2]:
        if p.count(".") == 2 and p[0] in "245":
            return p
    return "5.0.0" if res.code >= 500 else "4.0.0"


def describe_result(res: RcptResult) -> dict[str, Any]:
    """A JSON-friendly view of a result (logs, tests)."""
    return {"kind": res.kind, "code": res.code, "text": res.text, "mta": res.mta}
