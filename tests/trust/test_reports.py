"""DSN (RFC 3464/3461) and MDN (RFC 8098) build -> parse round trips, and fuzzing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.reports.dsn import (
    Action,
    DsnParseError,
    FailureReason,
    Notify,
    RecipientOutcome,
    Ret,
    build_dsn,
    parse_dsn,
)
from mailserver.reports.mdn import (
    IntegrationError,
    MdnParseError,
    build_integration_receipt,
    build_read_receipt,
    parse_mdn,
)

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
ORIGINAL = (
    b"From: Dr Martin <martin@medecin.example.fr>\r\n"
    b"To: 279035121518989@patient.example.fr\r\n"
    b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\n"
    b"Message-ID: <m1@medecin.example.fr>\r\n"
    b"Disposition-Notification-To: martin@medecin.example.fr\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Compte rendu confidentiel \xc3\xa9\r\n"
)
PATIENT = "279035121518989@patient.example.fr"


def outcome(action: Action = Action.FAILED, reason: FailureReason = FailureReason.MAILBOX_CLOSED,
            **kw: object) -> RecipientOutcome:
    return RecipientOutcome(PATIENT, action, reason, **kw)  # type: ignore[arg-type]


def dsn(*outcomes: RecipientOutcome, ret: Ret | None = None,
        sender: str = "martin@medecin.example.fr", envid: str | None = "Q123") -> bytes | None:
    built = build_dsn(original=ORIGINAL, envelope_sender=sender, outcomes=outcomes,
                      reporting_mta="mx.nous.fr", our_domain="nous.fr", envid=envid, ret=ret,
                      arrival_date=NOW, now=NOW + timedelta(minutes=5))
    if built is None:
        return None
    assert built.envelope_sender == ""
    assert built.envelope_recipient == sender
    return built.message


@pytest.mark.parametrize(
    ("reason", "status", "fr", "en"),
    [
        (FailureReason.MAILBOX_CLOSED, "5.2.1", "boîte aux lettres", "mailbox is closed"),
        (FailureReason.PATIENT_UNKNOWN, "5.1.1", "patient inconnu", "patient is unknown"),
        (FailureReason.INVALID_ADDRESS, "5.1.3", "adresse", "address is invalid"),
        (FailureReason.MESSAGE_TOO_LARGE, "5.3.4", "25 Mo", "25 MB"),
        (FailureReason.TRUST_SPACE, "5.7.1", "espace de confiance", "trust space"),
        (FailureReason.REMOTE_ERROR, "5.0.0", "serveur distant", "remote server"),
    ],
    ids=lambda v: v.name if isinstance(v, FailureReason) else None,
)
def test_failure_reasons_round_trip(reason: FailureReason, status: str, fr: str, en: str) -> None:
    data = dsn(outcome(reason=reason))
    assert data is not None
    parsed = parse_dsn(data)
    assert parsed.recipients[0].status == status
    assert parsed.recipients[0].action == "failed"
    assert fr in parsed.human_text and en in parsed.human_text


def test_full_failure_report_fields_and_stdlib_view() -> None:
    data = dsn(outcome(original_recipient="rfc822;Patient@patient.example.fr",
                       diagnostic="550 5.2.1 Mailbox disabled", remote_mta="mx.remote.fr",
                       last_attempt=NOW), ret=Ret.FULL)
    assert data is not None
    msg = message_from_bytes(data, policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert str(msg["From"]) == "MAILER-DAEMON@nous.fr"
    assert str(msg["To"]) == "martin@medecin.example.fr"
    assert str(msg["Subject"]).startswith("Échec de remise")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain", "message/delivery-status", "message/rfc822"]
    parsed = parse_dsn(data)
    assert parsed.reporting_mta == "mx.nous.fr"
    assert parsed.envid == "Q123"
    assert parsed.arrival_date is not None
    r = parsed.recipients[0]
    assert r.final_recipient == PATIENT
    assert r.original_recipient == "Patient@patient.example.fr"
    assert r.diagnostic == "550 5.2.1 Mailbox disabled"
    assert r.remote_mta == "mx.remote.fr"
    assert r.last_attempt == "Fri, 27 Nov 2026 10:00:00 +0000"
    assert r.will_retry_until is None
    assert parsed.returned_full
    assert "Message-ID: <m1@medecin.example.fr>" in (parsed.returned_headers or "")
    assert b"Compte rendu confidentiel" in data  # RET=FULL returns the body


@pytest.mark.parametrize("ret", [Ret.HDRS, None], ids=["RET=HDRS", "RET-absent"])
def test_headers_only_returns_no_body(ret: Ret | None) -> None:
    data = dsn(outcome(), ret=ret)
    assert data is not None
    assert b"Compte rendu" not in data
    parsed = parse_dsn(data)
    assert not parsed.returned_full
    assert "Subject: =?utf-8?q?R=C3=A9sultats?=" in (parsed.returned_headers or "")


def test_delayed_has_will_retry_until() -> None:
    data = dsn(outcome(Action.DELAYED, FailureReason.DELAYED, last_attempt=NOW,
                       will_retry_until=NOW + timedelta(days=5)))
    assert data is not None
    r = parse_dsn(data).recipients[0]
    assert (r.action, r.status) == ("delayed", "4.4.1")
    assert r.will_retry_until == "Wed, 02 Dec 2026 10:00:00 +0000"
    assert "retardée" in parse_dsn(data).human_text


@pytest.mark.parametrize(
    ("notify", "action", "reported"),
    [
        (None, Action.FAILED, True),
        (None, Action.DELAYED, True),
        (None, Action.DELIVERED, False),
        (frozenset({Notify.NEVER}), Action.FAILED, False),
        (frozenset({Notify.SUCCESS}), Action.DELIVERED, True),
        (frozenset({Notify.SUCCESS}), Action.FAILED, False),
        (frozenset({Notify.FAILURE}), Action.DELAYED, False),
        (frozenset({Notify.DELAY, Notify.FAILURE}), Action.DELAYED, True),
    ],
    ids=["default-failure", "default-delay", "default-success", "never", "success",
         "success-only-failed", "failure-only-delayed", "delay"],
)
def test_notify_semantics(notify: frozenset[Notify] | None, action: Action, reported: bool) -> None:
    reason = {Action.FAILED: FailureReason.PATIENT_UNKNOWN, Action.DELAYED: FailureReason.DELAYED,
              Action.DELIVERED: FailureReason.DELIVERED}[action]
    data = dsn(outcome(action, reason, notify=notify))
    assert (data is not None) == reported
    if data is not None:
        assert parse_dsn(data).recipients[0].action == action.value


def test_only_selected_recipients_listed_and_null_sender() -> None:
    other = RecipientOutcome("b@patient.example.fr", Action.FAILED, FailureReason.INVALID_ADDRESS,
                             notify=frozenset({Notify.NEVER}))
    data = dsn(outcome(), other)
    assert data is not None
    assert [r.final_recipient for r in parse_dsn(data).recipients] == [PATIENT]
    assert dsn(outcome(), sender="") is None  # never bounce a bounce (RFC 5321 6.1)


def test_header_injection_is_neutralised() -> None:
    data = dsn(outcome(diagnostic="550 nope\r\nBcc: evil@example.com"), envid="a\r\nX-Evil: 1")
    assert data is not None
    assert b"\r\nBcc:" not in data and b"\r\nX-Evil:" not in data
    assert parse_dsn(data).recipients[0].diagnostic == "550 nope Bcc: evil@example.com"


# --- MDN ---------------------------------------------------------------------------------


def test_read_receipt() -> None:
    mdn = build_read_receipt(ORIGINAL, notify_to="martin@medecin.example.fr",
                             final_recipient=PATIENT, reporting_ua="webmail.nous.fr; mssante",
                             our_domain="nous.fr", now=NOW)
    assert mdn.envelope_sender == "" and mdn.envelope_recipient == "martin@medecin.example.fr"
    msg = message_from_bytes(mdn.message, policy=default)
    assert msg.get_param("report-type") == "disposition-notification"
    assert str(msg["In-Reply-To"]) == "<m1@medecin.example.fr>"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain", "message/disposition-notification", "text/rfc822-headers"]
    assert b"Disposition: automatic-action/MDN-sent-automatically; displayed\r\n" in mdn.message
    assert b"Compte rendu" not in mdn.message
    parsed = parse_mdn(mdn.message)
    assert parsed.disposition == "displayed" and parsed.automatic
    assert parsed.final_recipient == PATIENT
    assert parsed.original_message_id == "<m1@medecin.example.fr>"
    assert parsed.reporting_ua == "webmail.nous.fr; mssante"
    assert parsed.error_code is None
    assert "ouvert" in parsed.human_text and "opened" in parsed.human_text


def test_integration_success() -> None:
    mdn = build_integration_receipt(ORIGINAL, notify_to="martin@medecin.example.fr",
                                    final_recipient=PATIENT, reporting_ua="dossier.nous.fr; bridge",
                                    our_domain="nous.fr")
    parsed = parse_mdn(mdn.message)
    assert (parsed.disposition, parsed.modifiers, parsed.error_code) == ("processed", (), None)


@pytest.mark.parametrize("error", list(IntegrationError), ids=lambda e: str(e.code))
def test_integration_errors(error: IntegrationError) -> None:
    mdn = build_integration_receipt(ORIGINAL, notify_to="martin@medecin.example.fr",
                                    final_recipient=PATIENT, reporting_ua="dossier.nous.fr; bridge",
                                    our_domain="nous.fr", error=error)
    parsed = parse_mdn(mdn.message)
    assert parsed.disposition == "processed" and parsed.modifiers == ("error",)
    assert parsed.error_code == error.code
    assert IntegrationError.from_code(parsed.error_code) is error
    assert parsed.error_text and parsed.error_text.isascii()
    assert f"Error: {error.code}^".encode() in mdn.message


def test_parse_compact_error_spelling() -> None:
    body = (
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=B\r\n"
        b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        b"--B\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Final-Recipient: rfc822; p@patient.example.fr\r\n"
        b"Disposition: automatic-action/MDN-sent-automatically; "
        b"processed/Error: 902^Patient inconnu\r\n"
        b"\r\n--B--\r\n"
    )
    parsed = parse_mdn(body)
    assert parsed.error_code == 902 and parsed.error_text == "Patient inconnu"
    assert parsed.modifiers == ("error",)


@pytest.mark.parametrize(
    "data",
    [b"", b"Subject: x\r\n\r\nbody",
     b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B--\r\n",
     b"Content-Type: multipart/report; report-type=disposition-notification; boundary=B\r\n\r\n"
     b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\n"
     b"Content-Type: message/disposition-notification\r\n\r\nReporting-UA: x\r\n\r\n--B--\r\n"],
    ids=["empty", "plain", "wrong-type", "no-final-recipient"],
)
def test_mdn_parse_errors(data: bytes) -> None:
    with pytest.raises(MdnParseError):
        parse_mdn(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"Subject: x\r\n\r\nbody",
     b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
     b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\n"
     b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
     b"Action: failed\r\n\r\n--B--\r\n"],
    ids=["empty", "plain", "no-final-recipient"],
)
def test_dsn_parse_errors(data: bytes) -> None:
    with pytest.raises(DsnParseError):
        parse_dsn(data)


# --- fuzzing: only the documented exception escapes -------------------------------------

_field_lines = st.lists(
    st.tuples(st.sampled_from(["Final-Recipient", "Action", "Status", "Disposition", "Error",
                               "Reporting-MTA", "Original-Recipient", "X"]),
              st.text(max_size=30)),
    max_size=6,
)


@st.composite
def report_like(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["delivery-status", "disposition-notification", "x"]))
    lines = "".join(f"{k}: {v}\r\n" for k, v in draw(_field_lines))
    blocks = lines + ("\r\n" + lines if draw(st.booleans()) else "")
    text = (
        f"Content-Type: multipart/report; report-type={kind}; boundary=B\r\n\r\n"
        f"--B\r\nContent-Type: text/plain; charset={draw(st.sampled_from(['utf-8', 'bogus']))}\r\n"
        f"Content-Transfer-Encoding: "
        f"{draw(st.sampled_from(['base64', 'quoted-printable', '7bit']))}"
        f"\r\n\r\n{draw(st.text(max_size=20))}\r\n"
        f"--B\r\nContent-Type: message/{kind}\r\n\r\n{blocks}\r\n--B--\r\n"
    )
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), report_like()))
def test_fuzz_dsn_parser(data: bytes) -> None:
    try:
        parse_dsn(data)
    except DsnParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), report_like()))
def test_fuzz_mdn_parser(data: bytes) -> None:
    try:
        parse_mdn(data)
    except MdnParseError:
        pass


@settings(max_examples=60, deadline=None)
@given(diag=st.text(max_size=60), envid=st.text(max_size=20), addr=st.emails())
def test_fuzz_dsn_build_parse_round_trip(diag: str, envid: str, addr: str) -> None:
    built = build_dsn(original=ORIGINAL, envelope_sender="s@nous.fr",
                      outcomes=[RecipientOutcome(addr, Action.FAILED, FailureReason.REMOTE_ERROR,
                                                 diagnostic=diag or None)],
                      reporting_mta="mx.nous.fr", our_domain="nous.fr", envid=envid or None)
    assert built is not None
    parsed = parse_dsn(built.message)
    assert parsed.recipients[0].final_recipient == " ".join(addr.split())
    assert parsed.recipients[0].status == "5.0.0"
