"""aiosmtpd handler: normalise, ask the policy (through Delivery), map to replies.

One handler class serves both roles:

* ``submission`` (port 587 role, RFC 6409): STARTTLS then AUTH are required; the envelope
  sender must be the authenticated mailbox's own address, and so must every address of the
  message's one ``From:`` field and of its ``Sender:`` field if any (read as recipients read
  them: unfolded by removing line breaks only, parsed strictly; see :func:`_authors_refusal`).
* ``inbound`` (port 25 role, between operators): no AUTH; only local recipients are accepted
  (never an open relay); the sender's domain must be in the trust space. When the trust list
  names at least one domain and ``[trust] require_client_cert`` is on (the default), MAIL FROM
  also requires TLS and a client certificate that chains to a trusted CA (OpenSSL's verdict,
  taken during a handshake that accepted any certificate: ``trust.askcert``) and whose subject
  DN is listed for the envelope sender's domain (any trusted domain for a null sender).
  At DATA every DKIM signature is verified (RFC 6376), an
  Authentication-Results header is added (RFC 8601) and ``[dkim] failure_policy`` applies.

RFC 3461 DSN parameters (taken off the command line by ``server.OperatorSMTP``) are passed to
delivery as ``options`` (``envid``, ``ret``, ``rcpt: {address: {notify, orcpt}}``).

Per-connection facts live on aiosmtpd's ``session`` object (attributes prefixed ``mss_``).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import re
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session
from cryptography import x509

from mailserver import metrics
from mailserver.config import Config
from mailserver.delivery import Delivery, HeaderFacts, parse_header_facts
from mailserver.directory.service import AccountInfo, Directory
from mailserver.dkim import signing as D
from mailserver.errors import AuthError, StorageFull, StoreError
from mailserver.headers import header_block, raw_fields, strict_addresses
from mailserver.identifiers import is_valid_address, normalise_address
from mailserver.logs import conn_id
from mailserver.policy import Kind, Party, Reason
from mailserver.reports import dsn
from mailserver.smtp import replies as R
from mailserver.store.audit import Channel, Origin
from mailserver.trust.askcert import chain_problem
from mailserver.trust.space import dns_txt_lookup, zone_txt_lookup

__all__ = ["MailHandler", "ReportSink"]

log = logging.getLogger(__name__)

ReportSink = Callable[[str, bytes], Awaitable[None]]
"""Delivers a built delivery report to its recipient (the system mail's ``report``)."""


def _account_of(session: Session) -> AccountInfo | None:
    """The authenticated account of a submission session."""
    return session.auth_data if isinstance(session.auth_data, AccountInfo) else None


def _peer_host(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _crlf(raw: bytes) -> bytes:
    """RFC 5322 2.3 lines end in CRLF; as a submission server (RFC 6409 8) we repair bare LF
    line ends that some clients send, so IMAP clients and DKIM see standard messages."""
    # Counting is cheap (no copy of a 25 MB message); substitute only when needed.
    return _BARE_LF.sub(b"\r\n", raw) if raw.count(b"\n") != raw.count(b"\r\n") else raw


_AUTHOR_FIELDS = frozenset({"from", "sender"})
_BARE_CR = re.compile(rb"\r(?!\n)")


def _authors_refusal(raw: bytes, own: frozenset[str]) -> tuple[str, R.Reply] | None:
    """Submission check of the author fields (RFC 5322 3.6.2): None when they are ``own``,
    else (reason for the log, reply).

    Exactly one ``From:`` field (RFC 5322 3.6) and at most one ``Sender:``; every address of
    both must be one the authenticated mailbox may write as. Fields are read as the most
    lenient recipient would (:func:`mailserver.headers.raw_fields`) and parsed strictly
    (:func:`mailserver.headers.strict_addresses`), so no reader can find another author.
    A bare CR in the header section is refused (RFC 5322 2.2): readers disagree on whether it
    ends a line.
    """
    if _BARE_CR.search(header_block(raw)):
        return "BARE_CR_IN_HEADER", R.BARE_CR_IN_HEADER
    fields = raw_fields(raw, _AUTHOR_FIELDS)
    if len(fields["from"]) != 1 or len(fields["sender"]) > 1:
        return "AUTHOR_FIELD_COUNT", R.AUTHOR_FIELD_COUNT
    for name, refusal in (("from", R.FROM_NOT_OWNED), ("sender", R.SENDER_HEADER_NOT_OWNED)):
        for value in fields[name]:
            addresses = strict_addresses(value)
            if not addresses:
                return "AUTHOR_FIELD_MALFORMED", R.AUTHOR_FIELD_MALFORMED
            if any(normalise_address(a) not in own for a in addresses):
                return f"{name.upper()}_NOT_OWNED", refusal
    return None


CANNOT_DECODE = "501 5.5.2 Cannot decode base64"


def _b64(initial_response: str) -> bytes | None:
    """An AUTH initial response decoded (RFC 4954 4), None if it is not base64: a non-ASCII
    character makes ``b64decode`` raise ValueError, not binascii.Error (found by fuzzing)."""
    try:
        return base64.b64decode(initial_response, validate=True)
    except ValueError:
        return None


def _parse_size(options: list[str]) -> int:
    for opt in options:
        key, _, value = opt.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


NEED_TLS = "530 5.7.0 Must issue a STARTTLS command first (required between operators)"
NEED_CERT = ("550 5.7.1 A client certificate from a trusted CA is required between operators"
             " of the trust space")
CERT_NOT_LISTED = "550 5.7.1 Client certificate subject is not listed for the sender's domain"
CERT_UNTRUSTED = ("550 5.7.1 Client certificate not issued by a CA of the trust space"
                  " ({reason})")
DKIM_REJECT = "550 5.7.20 DKIM signature verification failed"  # RFC 7372 3.1
DKIM_TEMP = "451 4.7.5 DKIM key lookup failed, try again later"


def _ssl_object(session: Session) -> ssl.SSLObject | None:
    info = session.ssl
    obj = info.get("ssl_object") if isinstance(info, dict) else None
    return obj if isinstance(obj, ssl.SSLObject) else None


def _peer_certificate(session: Session) -> x509.Certificate | None:
    ssl_obj = _ssl_object(session)
    der = ssl_obj.getpeercert(binary_form=True) if ssl_obj is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def _strip_our_auth_results(raw: bytes, authserv_id: str) -> bytes:
    """RFC 8601 5: remove Authentication-Results claiming to be ours before adding one."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw
    lines = raw[:end + 2].split(b"\r\n")
    out: list[bytes] = []
    skipping = False
    marker = authserv_id.lower().encode()
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
            continue
        name, _, value = line.partition(b":")
        skipping = (name.strip().lower() == b"authentication-results"
                    and value.strip().lower().split(b";")[0].strip() == marker)
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + raw[end + 2:]


def default_txt_lookup(config: Config) -> Callable[[str], str | None]:
    """DKIM key lookup: the static zone file when configured, else DNS."""
    if config.trust.static_zone_file:
        return zone_txt_lookup(config.path(Path(config.trust.static_zone_file)))
    return dns_txt_lookup(config.trust.dns_timeout)


class MailHandler:
    def __init__(self, config: Config, directory: Directory, delivery: Delivery, *,
                 role: str, txt_lookup: Callable[[str], str | None] | None = None,
                 reports: ReportSink | None = None) -> None:
        if role not in ("submission", "inbound"):
            raise ValueError("role must be 'submission' or 'inbound'")
        self.config = config
        self.directory = directory
        self.delivery = delivery
        self.role = role
        self.reports = reports
        self.txt_lookup = txt_lookup or default_txt_lookup(config)
        self.dkim_policy = D.FailurePolicy(config.dkim.failure_policy)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """Advertise DSN (RFC 3461) and PIPELINING (RFC 2920) before the final line."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", "250-DSN", *responses[-1:]]

    def _check_operator(self, session: Session, server: SMTP, addr: str) -> str | None:
        """Inbound mutual TLS check at MAIL FROM; None when the peer may send for ``addr``."""
        trust = self.delivery.trust
        dn_allowed = getattr(trust, "dn_allowed", None)
        if (not self.config.trust.require_client_cert or dn_allowed is None
                or getattr(trust, "empty", True)):
            return None
        if getattr(server, "_tls_protocol", None) is None:
            log.info("trust: deny reason=NO_TLS")
            return NEED_TLS
        cert = _peer_certificate(session)
        if cert is None:
            log.info("trust: deny reason=NO_CLIENT_CERTIFICATE")
            return NEED_CERT
        # The handshake accepted any certificate (trust.askcert): apply OpenSSL's verdict on
        # its chain now, so the peer gets a 5xx and bounces instead of retrying for days.
        problem = chain_problem(_ssl_object(session))
        if problem is not None:
            log.info("trust: deny reason=UNTRUSTED_CA (%s)", problem)
            return CERT_UNTRUSTED.format(reason=problem)
        domain = addr.rpartition("@")[2]
        allowed = (dn_allowed(domain, cert) if addr
                   else trust.dn_allowed_any(cert))  # type: ignore[attr-defined]
        if not allowed:
            log.info("trust: deny reason=CERTIFICATE_DN_NOT_LISTED domain=%s", domain or "<>")
            return CERT_NOT_LISTED
        return None

    async def _dkim(self, raw: bytes) -> tuple[str | None, bytes]:
        """Verify DKIM; returns (refusal reply or None, message with Authentication-Results)."""
        result = await asyncio.to_thread(D.verify, raw, self.txt_lookup)
        decision = D.decide(result, self.dkim_policy)
        log.info("dkim: %s action=%s", decision.reason, decision.action.value)
        if decision.action is D.DkimAction.REJECT:
            return DKIM_REJECT, raw
        if decision.action is D.DkimAction.TEMPFAIL:
            return DKIM_TEMP, raw
        header = D.authentication_results(self.config.hostname, result)
        raw = _strip_our_auth_results(raw, self.config.hostname)
        return None, f"Authentication-Results: {header}\r\n".encode() + raw

    # -- authentication (RFC 4954; mechanisms RFC 4616 PLAIN and LOGIN) ---------------------

    def _origin(self, session: Session) -> Origin:
        """This connection as the audit trail records it."""
        channel = Channel.SUBMISSION if self.role == "submission" else Channel.SMTP
        return Origin(channel, _peer_host(session))

    async def _check(self, server: SMTP, login: str, password: str,
                     mechanism: str = "PLAIN") -> AuthResult:
        try:
            account = await self.directory.authenticate(
                login, password, client=_peer_host(server.session),  # type: ignore[arg-type]
                channel=self._origin(server.session).channel,  # type: ignore[arg-type]
                mechanism=mechanism)
        except AuthError as exc:
            if exc.not_allowed:
                return AuthResult(success=False, handled=False, message=str(R.AUTH_NOT_ALLOWED))
            if exc.locked:
                return AuthResult(success=False, handled=False, message=str(R.AUTH_LOCKED))
            return AuthResult(success=False, handled=False, message=str(R.AUTH_FAILED))
        log.info("smtp: authenticated kind=%s", account.kind)
        return AuthResult(success=True, handled=False, auth_data=account,
                          message=str(R.AUTH_SUCCESS))

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        got = await server.challenge_auth("") if len(args) == 1 else _b64(args[1])
        if got is MISSING:
            return AuthResult(success=False, handled=True)
        if got is None:
            return AuthResult(success=False, handled=False, message=CANNOT_DECODE)
        assert isinstance(got, bytes)
        blob = got
        parts = blob.split(b"\0")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False,
                              message="501 5.5.2 Malformed PLAIN response")
        authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and normalise_address(authzid) != normalise_address(authcid):
            return AuthResult(success=False, handled=False, message=str(R.AUTH_FAILED))
        return await self._check(server, authcid, password)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            if (decoded := _b64(args[1])) is None:
                return AuthResult(success=False, handled=False, message=CANNOT_DECODE)
            user = decoded
        else:
            got = await server.challenge_auth("Username:")
            if got is MISSING:
                return AuthResult(success=False, handled=True)
            assert isinstance(got, bytes)
            user = got
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        assert isinstance(password, bytes)
        return await self._check(server, user.decode("utf-8", "replace"),
                                 password.decode("utf-8", "replace"), mechanism="LOGIN")

    # -- transaction ------------------------------------------------------------------------

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        size = _parse_size(mail_options)
        if size > self.config.smtp.max_message_size:
            return str(R.TOO_BIG)
        addr = normalise_address(address)
        if addr and not is_valid_address(addr):
            return str(R.BAD_SYNTAX)
        if self.role == "submission":
            account: AccountInfo | None = session.auth_data if isinstance(
                session.auth_data, AccountInfo) else None
            if account is None:
                return str(R.AUTH_REQUIRED)
            if addr != account.address:
                log.info("policy: deny reason=SENDER_NOT_OWNED")
                return str(R.SENDER_NOT_OWNED)
            sender = await self.delivery.party_of(account)
        else:
            domain = addr.rpartition("@")[2]
            if addr and self.delivery.is_local_domain(domain):
                return str(R.LOCAL_SENDER_INBOUND)
            if addr:
                sender = await self.delivery.classify(addr)
            else:
                # Null reverse-path (bounces, RFC 5321 4.5.5) from a peer of the trust space.
                sender = Party("", Kind.REMOTE_PROFESSIONAL)
            if sender.kind is Kind.OUTSIDE:
                log.info("policy: deny reason=SENDER_OUTSIDE_TRUST_SPACE")
                return str(R.for_reason(Reason.SENDER_OUTSIDE_TRUST_SPACE))
            refusal = self._check_operator(session, server, addr)
            if refusal is not None:
                return refusal
        session.mss_sender = sender  # type: ignore[attr-defined]
        session.mss_known = {}  # type: ignore[attr-defined]  # recipients looked up at RCPT
        session.mss_size = size  # type: ignore[attr-defined]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return str(R.OK_SENDER)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = await self._rcpt(server, session, envelope, address, rcpt_options)
        if not reply.startswith("2"):
            metrics.SMTP_REFUSED.labels(self.role, "rcpt", R.name_of(reply)).inc()
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        reply = await self._data(server, session, envelope)
        metrics.SMTP_ACCEPT_SECONDS.labels(self.role).observe(time.monotonic() - started)
        if reply.startswith("2"):
            metrics.SMTP_ACCEPTED.labels(self.role).inc()
        else:
            metrics.SMTP_REFUSED.labels(self.role, "data", R.name_of(reply)).inc()
        return reply

    async def _rcpt(self, server: SMTP, session: Session, envelope: Envelope,
                    address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.config.smtp.max_recipients:
            return str(R.TOO_MANY_RCPTS)
        addr = normalise_address(address)
        if self._is_postmaster(addr):
            addr = address = self.config.postmaster
        if not is_valid_address(addr):
            return str(R.BAD_SYNTAX)
        if self.role == "inbound" and not self.delivery.is_local_domain(addr.rpartition("@")[2]):
            log.info("policy: deny reason=RELAY_DENIED")
            return str(R.RELAY_DENIED)
        sender: Party = session.mss_sender  # type: ignore[attr-defined]
        decision = await self.delivery.check_rcpt(sender, addr,
                                                  size=getattr(session, "mss_size", 0),
                                                  known=getattr(session, "mss_known", None),
                                                  origin=self._origin(session),
                                                  authenticated=_account_of(session))
        if not decision.allowed:
            return str(R.for_reason(decision.reason))
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return str(R.OK_RCPT)

    async def _data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):  # pragma: no cover - decode_data is False
            raw = raw.encode("utf-8", "surrogateescape")
        assert isinstance(raw, bytes)
        if len(raw) > self.config.smtp.max_message_size:
            return str(R.TOO_BIG)
        sender: Party = session.mss_sender  # type: ignore[attr-defined]
        account: AccountInfo | None = None
        hf: HeaderFacts | None = None
        if self.role == "submission":
            account = session.auth_data if isinstance(session.auth_data, AccountInfo) else None
            if account is None:
                return str(R.AUTH_REQUIRED)
            raw = _crlf(raw)
            refusal = _authors_refusal(raw, self._own_addresses(account))
            if refusal is not None:
                log.info("policy: deny reason=%s", refusal[0])
                return str(refusal[1])
            hf = parse_header_facts(raw)
            if not hf.message_id or hf.date is None:
                raw = self._complete_submission(raw, hf.message_id, hf.date is not None)
                hf = None  # headers changed: delivery parses them again
        else:
            refusal, raw = await self._dkim(raw)
            if refusal is not None:
                return refusal
        raw = self._received(session, server) + raw
        dsn_mail = getattr(session, "mss_dsn_mail", None) or {}
        dsn_rcpt = getattr(session, "mss_dsn_rcpt", None) or {}
        options: dict[str, object] = {
            "envid": dsn_mail.get("envid"), "ret": dsn_mail.get("ret"),
            "rcpt": {normalise_address(a): v for a, v in dsn_rcpt.items()}}
        try:
            report = await self.delivery.deliver(sender, envelope.mail_from or "",
                                                 envelope.rcpt_tos, raw, authenticated=account,
                                                 options=options, headers=hf,
                                                 known=getattr(session, "mss_known", None),
                                                 origin=self._origin(session))
        except StorageFull:
            # RFC 3463 4.3.1 "mail system full"; RFC 5321 452 insufficient system storage.
            log.error("smtp: could not store message: storage full")
            return str(R.STORAGE_FULL)
        except StoreError:
            log.exception("smtp: could not store message")
            return str(R.TEMP_FAILURE.with_text(
                f"Temporary server error, try again later (ref {conn_id.get()})"))
        if not report.accepted:
            first = report.outcomes[0].decision.reason if report.outcomes else None
            return str(R.for_reason(first)) if first else str(R.NO_RCPTS)
        refused = [o for o in report.outcomes if not o.decision.allowed]
        if refused:
            log.info("smtp: %d recipients refused at DATA", len(refused))
        if self.role == "inbound" and envelope.mail_from and self.reports is not None:
            await self._delivered_reports(self.reports, envelope.mail_from, report.accepted,
                                          raw, options)
        return str(R.OK_QUEUED)

    async def _delivered_reports(self, reports: ReportSink, mail_from: str,
                                 accepted: list[str], raw: bytes,
                                 options: dict[str, object]) -> None:
        """RFC 3461 4.1: as the final MTA, report ``delivered`` to NOTIFY=SUCCESS recipients."""

        per = options.get("rcpt")
        wanted = [a for a in accepted if isinstance(per, dict)
                  and "SUCCESS" in str((per.get(a) or {}).get("notify") or "")]
        if not wanted:
            return
        outcomes = [dsn.RecipientOutcome(
            final_recipient=a, action=dsn.Action.DELIVERED, reason=dsn.FailureReason.DELIVERED,
            notify=frozenset({dsn.Notify.SUCCESS}),
            original_recipient=str((per.get(a) or {}).get("orcpt") or "") or None)
            for a in wanted if isinstance(per, dict)]
        ret = options.get("ret")
        report = dsn.build_dsn(
            original=raw, envelope_sender=mail_from, outcomes=outcomes,
            reporting_mta=self.config.hostname, our_domain=self.config.domain,
            envid=str(options.get("envid") or "") or None,
            ret=dsn.Ret.FULL if ret == "FULL" else None)
        if report is None:
            return
        try:
            await reports(report.envelope_recipient, report.message)
        except StoreError:
            log.warning("smtp: could not queue a delivery report")

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp: session error", exc_info=error)
        return f"451 4.3.0 Internal error (ref {conn_id.get()})"

    # -- helpers ----------------------------------------------------------------------------

    def _is_postmaster(self, addr: str) -> bool:
        """RFC 5321 4.5.1: ``<Postmaster>`` without a domain, and postmaster at any domain we
        serve (case-insensitive; ``addr`` is normalised), must be accepted."""
        local, at, domain = addr.rpartition("@")
        if not at:
            return domain == "postmaster"
        return local == "postmaster" and self.delivery.is_local_domain(domain)

    def _own_addresses(self, account: AccountInfo) -> frozenset[str]:
        """Addresses ``account`` may put in From:/Sender: (its own; delegations would go
        here)."""
        return frozenset({account.address})

    def _complete_submission(self, raw: bytes, message_id: str, has_date: bool) -> bytes:
        """RFC 6409 8.2/8.3: the MSA may add a missing Date and Message-ID."""
        extra = b""
        if not message_id:
            extra += (f"Message-ID: <{secrets.token_hex(12)}@{self.config.domain}>\r\n").encode()
        if not has_date:
            extra += f"Date: {email.utils.formatdate(localtime=False)}\r\n".encode()
        return extra + raw

    def _received(self, session: Session, server: SMTP) -> bytes:
        """RFC 5321 4.4 trace header (RFC 3848 protocol names)."""
        proto = "ESMTP"
        if getattr(server, "_tls_protocol", None) is not None:
            proto += "S"
        if session.authenticated:
            proto += "A"
        # The EHLO name as the client sent it, printable characters only: CR/LF would end
        # the header, and a byte that is not UTF-8 arrives as a lone surrogate (aiosmtpd
        # decodes with surrogateescape) that cannot be encoded (found by fuzzing).
        helo = "".join(c if c.isprintable() else "?"
                       for c in (session.host_name or "unknown")[:100])
        peer = _peer_host(session) or "unknown"
        stamp = email.utils.formatdate(localtime=False)
        return (f"Received: from {helo} ([{peer}])\r\n\tby {self.config.hostname} with {proto}"
                f" id {secrets.token_hex(6)};\r\n\t{stamp}\r\n").encode()
