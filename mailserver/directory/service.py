"""The directory: accounts hosted here (professionals, organisations, patients), their
credentials, and lookups used by the send policy and the front ends.

Authentication theory of operation:

* Passwords are Argon2id hashes. A successful verification is remembered for a few minutes as
  a keyed SHA-256 of the password (in memory only, with a per-process random key), the way
  Dovecot's auth cache works, so a client that reconnects often does not pay Argon2 each time.
  Each hit renews the entry; changing the password drops it. When several connections present
  the same password at once, one Argon2 check runs and the others wait for its result (single
  flight), so an expiring entry does not make every open connection hash at once.
* Every attempt is counted when it starts, before the password is looked at, per account (per
  typed name when no account has it) and per client address, in the database
  (:mod:`mailserver.store.attempts`: atomic, shared by SMTP, IMAP, the webmail and every
  process). Beyond ``lockout_threshold`` attempts per ``lockout_seconds`` window for a name
  (four times that for an address) attempts are refused without being evaluated; a success
  gives its slot back. The same password sent at once by several connections of one client is
  one attempt. Each failure waits ``fail_delay * 2**(n-1)`` seconds (capped) before answering.
* Nothing is told about an account before its password is proven: unknown names, wrong
  passwords, patients on mail clients and closed accounts are answered alike (same text, same
  Argon2 cost against a dummy hash, same counting and lockout); only with the right password
  does the caller learn that patients use the webmail or that the account is not open.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver import metrics
from mailserver.config import AuthConfig
from mailserver.directory.account_states import (
    PROVISIONAL_VALIDITY,
    AccountLifecycle,
    AccountStates,
    _utc,
    _utcnow,
    check_password,
    code_norm,
    new_provisional_code,
)
from mailserver.directory.audit_events import login_event
from mailserver.directory.passwords import Passwords
from mailserver.errors import (
    AlreadyExists,
    AuthError,
    KeyDestroyed,
    NotFound,
    StoreError,
    ValidationError,
)
from mailserver.identifiers import (
    is_valid_address,
    normalise_address,
    patient_address,
    validate_ins,
    validate_rpps,
)
from mailserver.lifecycle import (
    LOGIN_REFUSED,
    State,
    deadline_for,
    paris_date,
)
from mailserver.store import generations
from mailserver.store.attempts import Attempts, attempt_key
from mailserver.store.audit import AuditTrail, Channel
from mailserver.store.crypto import seal, unseal
from mailserver.store.db import Database
from mailserver.store.inactivity import login_is_stale, record_login
from mailserver.store.keys import KeyManager
from mailserver.store.mailstore import MailStore
from mailserver.store.models import Account, DirectoryEntry

__all__ = ["Directory", "AccountInfo", "AccountLifecycle", "PATIENT_STATUSES",
           "new_provisional_code"]

T = TypeVar("T")
K = TypeVar("K")

log = logging.getLogger(__name__)

PATIENT_STATUSES = tuple(state.value for state in State)
BAL_TYPES = ("PER", "ORG", "APP")


@dataclass(frozen=True)
class AccountInfo:
    id: int
    address: str
    kind: str  # "pro" | "patient"
    bal_type: str | None
    rpps: str | None
    ins: str | None
    name: str | None  # professionals; patients' names are sealed (see Directory.patient_name)
    profession: str | None
    structure_id: str | None
    status: str

    @property
    def is_patient(self) -> bool:
        return self.kind == "patient"

    @classmethod
    def of(cls, a: Account) -> AccountInfo:
        return cls(a.id, a.address, a.kind, a.bal_type, a.rpps, a.ins, a.name, a.profession,
                   a.structure_id, a.status)


@dataclass(frozen=True)
class NationalEntry:
    address: str
    bal_type: str
    id_pp: str | None
    name: str
    profession: str | None
    structure_name: str | None


@dataclass(frozen=True)
class _Verdict:
    """What one attempt came to: evaluated (``ok``) or refused unevaluated (``locked``)."""

    ok: bool
    locked: bool
    attempts: int  # the name's attempts in the window, this one included (for the back-off)


CLOSED_STATUSES = tuple(sorted(state.value for state in LOGIN_REFUSED))


class Directory(AccountStates):
    def __init__(self, db: Database, store: MailStore, keys: KeyManager, *,
                 domain: str, patient_domain: str, auth: AuthConfig, audit: AuditTrail,
                 passwords: Passwords | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.audit = audit
        self.clock: Callable[[], datetime] = lambda: _utc(clock())
        self.store = store
        self.keys = keys
        self.domain = domain
        self.patient_domain = patient_domain
        self.auth = auth
        self.passwords = passwords or Passwords()
        self._cache_key = secrets.token_bytes(32)
        self._auth_cache: dict[str, tuple[bytes, float, str]] = {}
        self.attempts = Attempts(db, auth.lockout_seconds)
        self._attempt_flights: dict[tuple[str, str, bytes], asyncio.Task[_Verdict]] = {}
        self._verify_flights: dict[tuple[str, bytes], asyncio.Task[bool]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._dummy_hash = self.passwords.hash_sync(secrets.token_urlsafe(16))
        # Lookups on the SMTP hot path are cached briefly; every write through this object
        # clears the cache and bumps the directory generation, so the other processes drop
        # theirs within CACHE_RECHECK (see store/generations.py).
        self._lookup_cache: dict[str, tuple[float, AccountInfo | None]] = {}
        self._generation: tuple[int, int] | None = None
        self._checked = 0.0

    CACHE_TTL = 5.0
    CACHE_MAX = 50_000
    CACHE_RECHECK = 0.1

    def invalidate(self) -> None:
        """Forget cached lookups (after any change to accounts)."""
        self._lookup_cache.clear()

    # -- creation ---------------------------------------------------------------------------

    async def _create(self, account: Account, *, name_to_seal: str | None = None,
                      contact: dict[str, str] | None = None) -> AccountInfo:
        async def op(s: AsyncSession) -> AccountInfo:
            exists = (await s.execute(select(Account.id).where(
                Account.address == account.address))).first()
            if exists:
                raise AlreadyExists(f"{account.address} is already registered")
            if account.ins and (await s.execute(select(Account.id).where(
                    Account.ins == account.ins))).first():
                raise AlreadyExists("a patient with this INS is already registered")
            s.add(account)
            await s.flush()
            key = await self.keys.create(s, account.id)
            if name_to_seal is not None:
                account.name_enc = seal(key, name_to_seal.encode(), f"name:{account.id}".encode())
            if contact is not None:
                account.contact_enc = seal(key, json.dumps(contact).encode(),
                                           f"contact:{account.id}".encode())
            await self.store.create_default_folders(s, account.id)
            return AccountInfo.of(account)

        try:
            return await self._write(op)
        except IntegrityError as exc:  # pragma: no cover - raced with another process
            raise AlreadyExists("already registered") from exc

    def _check_local_address(self, email: str) -> str:
        addr = normalise_address(email)
        if not is_valid_address(addr):
            raise ValidationError(f"invalid address {email!r}")
        domain = addr.rpartition("@")[2]
        if domain == self.patient_domain:
            raise ValidationError("professional addresses cannot use the patient domain")
        return addr

    async def add_professional(self, *, rpps: str, email: str, name: str, profession: str,
                               password: str, bal_type: str = "PER",
                               structure_id: str | None = None) -> AccountInfo:
        """Register a person's mailbox (BAL PER), bound to their RPPS number."""
        rpps = validate_rpps(rpps)
        addr = self._check_local_address(email)
        check_password(password)
        now = datetime.now(UTC)
        return await self._create(Account(
            address=addr, kind="pro", bal_type=bal_type, rpps=rpps, name=name.strip(),
            profession=profession.strip() or None, structure_id=structure_id,
            status="open", password_hash=await self.passwords.hash(password),
            created_at=now, opened_at=now, failed_logins=0))

    async def add_organisation(self, *, email: str, name: str, structure_id: str,
                               password: str, profession: str | None = None,
                               bal_type: str = "ORG") -> AccountInfo:
        """Register an organisation (ORG) or application (APP) mailbox."""
        if bal_type not in ("ORG", "APP"):
            raise ValidationError("bal_type must be ORG or APP")
        structure_id = structure_id.strip()
        if not structure_id or structure_id[0] not in "0123" or not structure_id[1:].isalnum():
            raise ValidationError(
                "structure id must be an idNat_Struct: 1+FINESS, 2+SIREN, 3+SIRET or 0+ADELI")
        addr = self._check_local_address(email)
        check_password(password)
        now = datetime.now(UTC)
        return await self._create(Account(
            address=addr, kind="pro", bal_type=bal_type, name=name.strip(),
            profession=(profession or "").strip() or None, structure_id=structure_id,
            status="open", password_hash=await self.passwords.hash(password),
            created_at=now, opened_at=now, failed_logins=0))

    async def add_patient(self, *, ins: str, name: str, status: str = "open",
                          contact: dict[str, str] | None = None,
                          notified_on: date | None = None) -> tuple[AccountInfo, str]:
        """Register a patient; returns the account and the provisional code of their letter.

        A ``pending`` account gets its opposition deadline: 6 weeks after ``notified_on``
        (default: today in Europe/Paris).
        """
        ins = validate_ins(ins)
        if status not in PATIENT_STATUSES:
            raise ValidationError(f"status must be one of {', '.join(PATIENT_STATUSES)}")
        code = new_provisional_code()
        now = self.clock()
        deadline = deadline_for(notified_on or paris_date(now)) if status == "pending" else None
        info = await self._create(Account(
            address=patient_address(ins, self.patient_domain), kind="patient", ins=ins,
            status=status, provisional_code_hash=await self.passwords.hash(code_norm(code)),
            provisional_expires=now + PROVISIONAL_VALIDITY, created_at=now,
            opened_at=now if status == "open" else None, failed_logins=0,
            open_deadline=deadline,
        ), name_to_seal=name.strip(), contact=contact)
        return info, code

    # -- lookups ----------------------------------------------------------------------------

    async def lookup(self, address: str) -> AccountInfo | None:
        addr = normalise_address(address)
        now = time.monotonic()
        if now - self._checked >= self.CACHE_RECHECK:
            await self._revalidate(now)
        hit = self._lookup_cache.get(addr)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.session() as s:
            a = (await s.execute(select(Account).where(Account.address == addr))).scalars().first()
        info = AccountInfo.of(a) if a else None
        if len(self._lookup_cache) >= self.CACHE_MAX:
            self._lookup_cache.clear()
        self._lookup_cache[addr] = (now + self.CACHE_TTL, info)
        return info

    async def get(self, account_id: int) -> AccountInfo:
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        if a is None:
            raise NotFound("no such account")
        return AccountInfo.of(a)

    async def by_ins(self, ins: str) -> AccountInfo | None:
        async with self.db.session() as s:
            a = (await s.execute(select(Account).where(
                Account.ins == ins.strip().upper()))).scalars().first()
        return AccountInfo.of(a) if a else None

    async def by_login(self, login_id: str) -> AccountInfo | None:
        async with self.db.session() as s:
            a = (await s.execute(select(Account).where(
                Account.login_id == login_id.strip().lower()))).scalars().first()
        return AccountInfo.of(a) if a else None

    async def is_activated(self, account_id: int) -> bool:
        """True once the account holder chose their own credentials (first connection)."""
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        return a is not None and a.password_hash is not None

    async def patient_name(self, account_id: int) -> str:
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        if a is None or a.name_enc is None:
            return ""
        key = await self.keys.get(account_id)
        return unseal(key, a.name_enc, f"name:{account_id}".encode()).decode()

    async def display_name(self, info: AccountInfo) -> str:
        if info.is_patient:
            try:
                return await self.patient_name(info.id)
            except KeyDestroyed:
                return ""
        return info.name or ""

    async def contact(self, account_id: int) -> dict[str, str]:
        async with self.db.session() as s:
            a = await s.get(Account, account_id)
        if a is None or a.contact_enc is None:
            return {}
        key = await self.keys.get(account_id)
        data = json.loads(unseal(key, a.contact_enc, f"contact:{account_id}".encode()))
        return {str(k): str(v) for k, v in data.items()}

    async def set_contact(self, account_id: int, contact: dict[str, str]) -> None:
        key = await self.keys.get(account_id)
        blob = seal(key, json.dumps(contact).encode(), f"contact:{account_id}".encode())

        async def op(s: AsyncSession) -> None:
            await s.execute(update(Account).where(Account.id == account_id)
                            .values(contact_enc=blob))

        await self._write(op)

    async def national_entry(self, address: str) -> NationalEntry | None:
        """A mailbox of the national directory (imported extraction), hosted anywhere."""
        async with self.db.session() as s:
            e = await s.get(DirectoryEntry, normalise_address(address))
        if e is None:
            return None
        name = " ".join(p for p in (e.first_name, e.last_name) if p) or (e.structure_name or "")
        return NationalEntry(e.address, e.bal_type, e.id_pp, name, e.profession,
                             e.structure_name)

    async def organisation_address(self, structure_id: str, profession: str) -> str | None:
        """The address of an open organisation mailbox (ORG) of ``structure_id`` here, if any."""
        async with self.db.session() as s:
            row = (await s.execute(select(Account.address).where(
                Account.structure_id == structure_id, Account.bal_type == "ORG",
                Account.profession == profession, Account.status == "open").limit(1))).first()
        return row[0] if row else None

    async def set_status(self, account_id: int, status: str) -> None:
        if status not in PATIENT_STATUSES:
            raise ValidationError(f"unknown status {status!r}")
        now = datetime.now(UTC)
        values: dict[str, object] = {"status": status}
        if status == "open":
            values["opened_at"] = now
        if status == "closed":
            values["closed_at"] = now

        async def op(s: AsyncSession) -> None:
            await s.execute(update(Account).where(Account.id == account_id).values(**values))

        await self._write(op)

    async def _write(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run a write transaction (:meth:`Database.write`) that also bumps the directory
        generation (every process drops its cached lookups), then drop ours."""
        async def bumped(s: AsyncSession) -> T:
            result = await op(s)
            await generations.bump_in(s, generations.DIRECTORY)
            return result

        try:
            return await self.db.write(bumped)
        finally:
            self.invalidate()

    async def _revalidate(self, now: float) -> None:
        """Drop cached lookups when an account changed in any process (the directory
        generation moved) or a key was moved or shredded (closing, reactivation)."""
        self._checked = now
        async with self.db.session() as s:
            generation = await generations.read_in(s)
        if generation != self._generation:
            self._lookup_cache.clear()
            self._generation = generation

    def _cache_digest(self, password: str) -> bytes:
        return hmac.new(self._cache_key, password.encode(), hashlib.sha256).digest()

    def _fail_delay(self, n: int) -> float:
        return min(self.auth.fail_delay * (1 << max(0, min(n, 32) - 1)), self.auth.max_fail_delay)

    async def authenticate(self, identifier: str, password: str, *, client: str | None = None,
                           allow_patients: bool = False, channel: Channel = Channel.SYSTEM,
                           mechanism: str = "password") -> AccountInfo:
        """Check credentials; raises AuthError (after the back-off delay) when refused.

        ``identifier`` is an address, or a patient's personal login identifier. Until the
        password is proven, a known account is answered exactly like an unknown name. Every
        attempt is recorded in the audit trail (``channel``, ``client``, ``mechanism``).
        """
        ident = normalise_address(identifier)
        async with self.db.reader() as s:
            q = select(Account).where(
                (Account.address == ident) | (Account.login_id == ident))
            a = (await s.execute(q)).scalars().first()
        try:
            account = await self._authenticate(a, ident, password, client, allow_patients)
        except AuthError as exc:
            outcome = ("locked" if exc.locked else "not-allowed" if exc.not_allowed
                       else "invalid")
            await self._audit_login(a, ident, channel, client, mechanism, outcome)
            raise
        await self._audit_login(a, ident, channel, client, mechanism, "ok")
        return account

    async def _audit_login(self, a: Account | None, ident: str, channel: Channel,
                           client: str | None, mechanism: str, outcome: str) -> None:
        event = login_event(a, ident, channel=channel, client=client, mechanism=mechanism,
                            outcome=outcome)
        if outcome == "ok":  # the answer need not wait for this commit
            self.audit.append_soon(event)
            return
        try:
            await self.audit.append(event)
        except StoreError as exc:
            log.warning("auth: attempt not audited: %s", type(exc).__name__)

    async def _authenticate(self, a: Account | None, ident: str, password: str,
                            client: str | None, allow_patients: bool) -> AccountInfo:
        subject = f"account:{a.id}" if a is not None else f"unknown:{ident}"
        digest = self._cache_digest(password)
        verdict = await _single_flight(
            self._attempt_flights, (subject, client or "", digest),
            lambda: self._attempt(a, subject, client, password, digest))
        if verdict.locked:
            metrics.AUTH_FAILURES.labels("locked").inc()
            await asyncio.sleep(self._fail_delay(verdict.attempts))
            raise AuthError("too many failures, try again later", locked=True)
        if not verdict.ok or a is None:
            log.info("auth: failure")
            metrics.AUTH_FAILURES.labels("invalid").inc()
            await asyncio.sleep(self._fail_delay(verdict.attempts))
            raise AuthError("invalid credentials")
        if a.kind == "patient" and not allow_patients:
            raise AuthError("patients use the secure webmail, not mail clients",
                            not_allowed=True)
        if a.status in CLOSED_STATUSES:
            raise AuthError("account is not open", not_allowed=True)
        await self._note_login(a)
        return AccountInfo.of(a)

    async def _note_login(self, a: Account) -> None:
        """Keep the last login (once an hour at most; the inactive-mailbox rule reads it)."""
        now = datetime.now(UTC)
        if not login_is_stale(a.last_login_at, a.inactive_notice_at, a.inactive_marked_at, now):
            return
        try:
            await record_login(self.db, a.id, now)
        except StoreError as exc:  # the login itself succeeded: never refuse it for this
            log.warning("auth: last login not recorded: %s", type(exc).__name__)

    async def _attempt(self, a: Account | None, subject: str, client: str | None,
                       password: str, digest: bytes) -> _Verdict:
        """Claim the attempt's slots, then (only if allowed) check the password. A password
        verified here before (the cache) is not a guess: the counters are only read."""
        keys = [(attempt_key("name", subject), self.auth.lockout_threshold)]
        if client:
            keys.append((attempt_key("client", client), self.auth.lockout_threshold * 4))
        if a is not None and self._remembered(a, digest):
            over = await self.attempts.locked(keys)
            if over is not None:
                log.info("auth: attempt refused, limit reached")
                return _Verdict(ok=False, locked=True, attempts=over[0] + 1)
            self._remember(a, digest)
            return _Verdict(ok=True, locked=False, attempts=1)
        counts = await self.attempts.claim(keys)
        if any(n > limit for n, (_key, limit) in zip(counts, keys, strict=True)):
            log.info("auth: attempt refused, limit reached")
            return _Verdict(ok=False, locked=True, attempts=counts[0])
        ok = await self._check_password(a, password, digest)
        if ok:
            # The answer need not wait for this second commit; the task is kept until done.
            task = asyncio.get_running_loop().create_task(
                self.attempts.release([key for key, _limit in keys]))
            self._releases.add(task)
            task.add_done_callback(_settled(self._releases))
        return _Verdict(ok=ok, locked=False, attempts=counts[0])

    def _remembered(self, a: Account, digest: bytes) -> bool:
        """Whether this password of ``a`` was verified here within the cache's lifetime (and
        the stored hash is still the one it was verified against)."""
        cached = self._auth_cache.get(a.address)
        return bool(a.password_hash and cached and cached[2] == a.password_hash
                    and cached[1] > time.monotonic() and hmac.compare_digest(cached[0], digest))

    def _remember(self, a: Account, digest: bytes) -> None:
        """Remember (or renew) ``a``'s password as verified, against its stored hash."""
        self._auth_cache[a.address] = (digest, time.monotonic() + self.auth.cache_seconds,
                                       a.password_hash or "")

    async def _check_password(self, a: Account | None, password: str, digest: bytes) -> bool:
        if a is None or not a.password_hash:
            await self.passwords.verify(self._dummy_hash, password)  # same cost for unknowns
            return False
        stored = a.password_hash
        if self._remembered(a, digest):
            ok = True
        else:
            ok = await _single_flight(self._verify_flights, (stored, digest),
                                      lambda: self.passwords.verify(stored, password))
        if ok:  # remembered, or renewed on use
            self._remember(a, digest)
        return ok


def _settled(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback dropping a background task from its owner and logging its failure."""
    def done(t: asyncio.Task[None]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.warning("auth: releasing an attempt failed: %s", type(t.exception()).__name__)

    return done


async def _single_flight(flights: dict[K, asyncio.Task[T]], key: K,
                         start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``start()`` once for every caller asking with ``key`` while it runs.

    The task is owned by ``flights`` until it ends; a caller that goes away (client
    disconnected) does not cancel it, so the others still get the result and a claimed attempt
    is always settled.
    """
    task = flights.get(key)
    if task is None:
        task = asyncio.get_running_loop().create_task(start())
        flights[key] = task

        def done(t: asyncio.Task[T]) -> None:
            if flights.get(key) is t:
                del flights[key]
            if not t.cancelled():
                t.exception()  # retrieved here too, in case every caller went away

        task.add_done_callback(done)
    return await asyncio.shield(task)
