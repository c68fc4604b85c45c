"""The patient's access log: append-only and tamper-evident ("Qui a consulté mes documents ?").

Theory of operation: every filing, every read of a document by a professional, and every change
the patient makes (upload, relabel, mask, delete, consent) appends one entry. Entries of a patient
are numbered 1, 2, 3... (``seq``, unique per patient) and each carries ``prev_hash``, the
``entry_hash`` of the entry before it (64 zeros for the first), and its own ``entry_hash``:

    entry_hash = HMAC-SHA-256(K_log, prev_hash | patient | seq | at | action | actor | document
                              | SHA-256(detail_enc))

``K_log`` is derived from the patient's data key (HKDF), so someone holding only the database
cannot recompute the chain after editing an entry; the details (who, with which profession, which
document title) are sealed with the data key, bound to (patient, seq) by the associated data.
:func:`verify` walks the chain and reports the first entry that does not fit. What a chain
cannot show on its own is the removal of the *last* entries: each append therefore also writes
the patient's head row (``DossierLogHead``: last seq, its entry_hash and an HMAC of both under
``K_log``) in the same transaction, and :func:`verify_entries` checks the chain ends exactly
there. Deleting the last entries (and even rewriting the head row to an earlier entry's values)
is then detected; restoring a whole older copy of both still needs the head kept outside the
database (`AuditReport.head`, printed by ``mssante documents audit``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dossier_bridge.crypto import PURPOSE_LOG, derive
from dossier_bridge.models import DossierLogEntry, DossierLogHead
from mailserver.store.crypto import DecryptError, seal, unseal

__all__ = ["AuditReport", "LogEntry", "append_in", "anchor_legacy_in", "verify_entries",
           "decode_entries", "GENESIS"]

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decoded entry of the access log."""

    seq: int
    at: datetime
    action: str
    actor_account_id: int | None
    document_id: int | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Result of verifying a patient's chain."""

    ok: bool
    entries: int
    head: str
    """entry_hash of the last entry (GENESIS when empty)."""
    first_bad_seq: int | None = None
    problems: tuple[str, ...] = field(default=())


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _aad(patient_id: int, seq: int) -> bytes:
    return f"dossier-log:{patient_id}:{seq}".encode()


def _head_mac(key: bytes, patient_id: int, seq: int, entry_hash: str) -> str:
    return hmac.new(key, f"head|{patient_id}|{seq}|{entry_hash}".encode(),
                    hashlib.sha256).hexdigest()


def _entry_hash(key: bytes, prev: str, patient_id: int, seq: int, at: datetime, action: str,
                actor: int | None, document: int | None, detail_enc: bytes) -> str:
    fields = [prev, str(patient_id), str(seq), _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%f"), action,
              "" if actor is None else str(actor), "" if document is None else str(document),
              hashlib.sha256(detail_enc).hexdigest()]
    return hmac.new(key, "|".join(fields).encode(), hashlib.sha256).hexdigest()


async def append_in(s: AsyncSession, data_key: bytes, patient_id: int, *, action: str,
                    actor_account_id: int | None, document_id: int | None,
                    detail: dict[str, Any], at: datetime | None = None) -> int:
    """Append an entry inside the caller's write transaction; returns its ``seq``.

    Concurrent appends for one patient are serialised by the unique (patient, seq) constraint:
    the losing transaction fails and its caller retries (group commit runs ops one by one).
    """
    last = (await s.execute(
        select(DossierLogEntry.seq, DossierLogEntry.entry_hash)
        .where(DossierLogEntry.patient_account_id == patient_id)
        .order_by(DossierLogEntry.seq.desc()).limit(1))).first()
    seq = (last[0] + 1) if last else 1
    prev = last[1] if last else GENESIS
    # Microsecond precision survives both SQLite and PostgreSQL.
    at = _utc(at or datetime.now(UTC))
    detail_enc = seal(data_key, json.dumps(detail, sort_keys=True).encode(),
                      _aad(patient_id, seq))
    key = derive(data_key, PURPOSE_LOG)
    entry_hash = _entry_hash(key, prev, patient_id, seq, at, action,
                             actor_account_id, document_id, detail_enc)
    s.add(DossierLogEntry(patient_account_id=patient_id, seq=seq, at=at, action=action,
                          actor_account_id=actor_account_id, document_id=document_id,
                          detail_enc=detail_enc, prev_hash=prev, entry_hash=entry_hash))
    head = await s.get(DossierLogHead, patient_id)
    mac = _head_mac(key, patient_id, seq, entry_hash)
    if head is None:
        s.add(DossierLogHead(patient_account_id=patient_id, seq=seq, entry_hash=entry_hash,
                             head_mac=mac))
    else:
        head.seq, head.entry_hash, head.head_mac = seq, entry_hash, mac
    await s.flush()
    return seq


def verify_entries(data_key: bytes, patient_id: int, rows: list[DossierLogEntry],
                   head: DossierLogHead | None = None) -> AuditReport:
    """Check the chain of ``rows`` (ordered by seq) and that it ends at ``head`` (the patient's
    head row; None when there is none); never raises for bad rows."""
    key = derive(data_key, PURPOSE_LOG)
    problems: list[str] = []
    first_bad: int | None = None
    prev = GENESIS
    expected_seq = 1
    for row in rows:
        bad: list[str] = []
        if row.seq != expected_seq:
            bad.append(f"entry {row.seq}: expected sequence number {expected_seq} (gap)")
        if row.prev_hash != prev:
            bad.append(f"entry {row.seq}: does not point at the previous entry")
        recomputed = _entry_hash(key, row.prev_hash, patient_id, row.seq, row.at, row.action,
                                 row.actor_account_id, row.document_id, row.detail_enc)
        if not hmac.compare_digest(recomputed, row.entry_hash):
            bad.append(f"entry {row.seq}: content does not match its hash")
        try:
            unseal(data_key, row.detail_enc, _aad(patient_id, row.seq))
        except DecryptError:
            bad.append(f"entry {row.seq}: sealed detail fails authentication")
        if bad and first_bad is None:
            first_bad = row.seq
        problems.extend(bad)
        prev = row.entry_hash
        expected_seq = row.seq + 1
    end = _head_problem(key, patient_id, rows, head)
    if end is not None:
        problems.append(end)
        if first_bad is None:
            first_bad = (rows[-1].seq + 1) if rows else 1
    return AuditReport(ok=not problems, entries=len(rows), head=prev, first_bad_seq=first_bad,
                       problems=tuple(problems))


def _head_problem(key: bytes, patient_id: int, rows: list[DossierLogEntry],
                  head: DossierLogHead | None) -> str | None:
    """Why the chain does not end at the head row (truncation), or None."""
    if head is None:
        return "the log's head is missing" if rows else None
    if not hmac.compare_digest(head.head_mac,
                               _head_mac(key, patient_id, head.seq, head.entry_hash)):
        return "the log's head does not match its authentication code"
    # The head is read before the rows: entries appended in between may follow it.
    at_head = next((r for r in rows if r.seq == head.seq), None)
    last_seq = rows[-1].seq if rows else 0
    if at_head is None or last_seq < head.seq:
        return (f"the log ends at entry {last_seq} but its head is entry {head.seq} "
                "(entries removed at the end)")
    if not hmac.compare_digest(head.entry_hash, at_head.entry_hash):
        return f"entry {head.seq}: does not match the log's head"
    return None


async def anchor_legacy_in(s: AsyncSession, data_key: bytes, patient_id: int) -> bool:
    """Give a log written before head rows existed a head at its current last entry (the
    one-off upgrade run when the heads table is created); False when it already has one or
    has no entries."""
    if await s.get(DossierLogHead, patient_id) is not None:
        return False
    last = (await s.execute(
        select(DossierLogEntry.seq, DossierLogEntry.entry_hash)
        .where(DossierLogEntry.patient_account_id == patient_id)
        .order_by(DossierLogEntry.seq.desc()).limit(1))).first()
    if last is None:
        return False
    key = derive(data_key, PURPOSE_LOG)
    s.add(DossierLogHead(patient_account_id=patient_id, seq=last[0], entry_hash=last[1],
                         head_mac=_head_mac(key, patient_id, last[0], last[1])))
    return True


def decode_entries(data_key: bytes, patient_id: int, rows: list[DossierLogEntry]
                   ) -> list[LogEntry]:
    """Unseal entries for display; an entry whose detail fails authentication shows empty."""
    out = []
    for row in rows:
        try:
            detail = json.loads(unseal(data_key, row.detail_enc, _aad(patient_id, row.seq)))
        except (DecryptError, ValueError):
            detail = {}
        out.append(LogEntry(row.seq, _utc(row.at), row.action, row.actor_account_id,
                            row.document_id, detail))
    return out
