"""The send policy, as a table over every pair of sender and recipient kinds."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailserver.lifecycle import State
from mailserver.policy import (
    PATIENT_MAX_SIZE,
    ConversationFacts,
    Decision,
    Facts,
    Kind,
    Party,
    Reason,
    can_reply,
    decide,
)

PRO = Party("dr@h.fr", Kind.PROFESSIONAL, "open", "PER")
ORG = Party("pharma@h.fr", Kind.PROFESSIONAL, "open", "ORG")
APP = Party("app@h.fr", Kind.PROFESSIONAL, "open", "APP")
REMOTE_PRO = Party("dr@other.fr", Kind.REMOTE_PROFESSIONAL)
PATIENT = Party("279035121518989@patient.h.fr", Kind.PATIENT, "open")
PATIENT2 = Party("185127510812395@patient.h.fr", Kind.PATIENT, "open")
REMOTE_PATIENT = Party("1@patient.other.fr", Kind.REMOTE_PATIENT)
UNKNOWN = Party("ghost@h.fr", Kind.UNKNOWN_LOCAL)
OUTSIDE = Party("x@gmail.com", Kind.OUTSIDE)
INVALID = Party("not an address", Kind.INVALID)
SHREDDED_PRO = Party("gone@h.fr", Kind.PROFESSIONAL, "open", "PER", shredded=True)
SHREDDED_PATIENT = Party("2@patient.h.fr", Kind.PATIENT, "open", shredded=True)
SYSTEM = Party("", Kind.SYSTEM)

SENDERS = {"pro": PRO, "org": ORG, "app": APP, "remote-pro": REMOTE_PRO, "patient": PATIENT,
           "remote-patient": REMOTE_PATIENT, "outside": OUTSIDE, "system": SYSTEM}
RECIPIENTS = {"pro": PRO, "org": ORG, "app": APP, "remote-pro": REMOTE_PRO, "patient": PATIENT2,
              "remote-patient": REMOTE_PATIENT, "unknown": UNKNOWN, "outside": OUTSIDE,
              "invalid": INVALID, "shredded-pro": SHREDDED_PRO,
              "shredded-patient": SHREDDED_PATIENT}

# Expected reason for each (sender, recipient) when the patient has no conversation.
A = Reason.ALLOWED
EXPECTED = {
    "pro": {"pro": A, "org": A, "app": A, "remote-pro": A, "patient": A, "remote-patient": A},
    "org": {"pro": A, "org": A, "app": A, "remote-pro": A, "patient": A, "remote-patient": A},
    "app": {"pro": A, "org": A, "app": A, "remote-pro": A, "patient": A, "remote-patient": A},
    "remote-pro": {"pro": A, "org": A, "app": A, "remote-pro": A, "patient": A,
                   "remote-patient": A},
    "patient": {"pro": Reason.PATIENT_CANNOT_START, "org": Reason.PATIENT_CANNOT_START,
                "app": Reason.PATIENT_CANNOT_START, "remote-pro": Reason.PATIENT_CANNOT_START,
                "patient": Reason.PATIENT_TO_PATIENT,
                "remote-patient": Reason.PATIENT_TO_PATIENT},
    "remote-patient": {"pro": A, "org": A, "app": A, "remote-pro": A,
                       "patient": Reason.PATIENT_TO_PATIENT,
                       "remote-patient": Reason.PATIENT_TO_PATIENT},
    "outside": {k: Reason.SENDER_OUTSIDE_TRUST_SPACE for k in
                ("pro", "org", "app", "remote-pro", "patient", "remote-patient")},
    # Delivery reports (Facts.receipt false) go back to whoever sent the message.
    "system": {"pro": A, "org": A, "app": A, "remote-pro": A, "patient": A,
               "remote-patient": A},
}
for row in EXPECTED.values():
    row.update({"unknown": Reason.UNKNOWN_RECIPIENT, "outside": Reason.OUTSIDE_TRUST_SPACE,
                "invalid": Reason.INVALID_ADDRESS})
    # A crypto-shredded mailbox refuses everyone's mail (only an outside sender is refused
    # for being outside first).
    row.update({"shredded-pro": Reason.MAILBOX_SHREDDED,
                "shredded-patient": Reason.MAILBOX_SHREDDED})
EXPECTED["outside"].update({"shredded-pro": Reason.SENDER_OUTSIDE_TRUST_SPACE,
                            "shredded-patient": Reason.SENDER_OUTSIDE_TRUST_SPACE})


@pytest.mark.parametrize("sender,recipient", list(itertools.product(SENDERS, RECIPIENTS)),
                         ids=[f"{s}->{r}" for s, r in itertools.product(SENDERS, RECIPIENTS)])
def test_table(sender: str, recipient: str) -> None:
    d = decide(SENDERS[sender], RECIPIENTS[recipient], Facts())
    assert d.reason is EXPECTED[sender][recipient]
    assert d.allowed is (d.reason is Reason.ALLOWED)


def conv(closed: bool = False, parties: frozenset[str] = frozenset({PRO.address})
         ) -> ConversationFacts:
    return ConversationFacts(closed, parties, PATIENT.address)


def test_patient_replies_inside_conversation() -> None:
    assert decide(PATIENT, PRO, Facts(conversation=conv())).allowed


def test_patient_reply_only_to_participants() -> None:
    d = decide(PATIENT, ORG, Facts(conversation=conv()))
    assert d == Decision(False, Reason.NOT_A_PARTICIPANT)


def test_patient_reply_to_reply_to_address_only() -> None:
    facts = Facts(conversation=conv(parties=frozenset({"secretariat@other.fr"})))
    assert decide(PATIENT, Party("secretariat@other.fr", Kind.REMOTE_PROFESSIONAL), facts).allowed
    assert decide(PATIENT, PRO, facts).reason is Reason.NOT_A_PARTICIPANT


def test_closed_conversation() -> None:
    assert decide(PATIENT, PRO, Facts(conversation=conv(closed=True))).reason is \
        Reason.CONVERSATION_CLOSED


def test_conversation_of_another_patient_does_not_count() -> None:
    other = ConversationFacts(False, frozenset({PRO.address}), PATIENT2.address)
    assert decide(PATIENT, PRO, Facts(conversation=other)).reason is Reason.PATIENT_CANNOT_START


def test_patient_never_writes_to_patient_even_in_conversation() -> None:
    facts = Facts(conversation=conv(parties=frozenset({PATIENT2.address})))
    assert decide(PATIENT, PATIENT2, facts).reason is Reason.PATIENT_TO_PATIENT


def test_pharmacy_exception() -> None:
    facts = Facts(pharmacies=frozenset({ORG.address}))
    assert decide(PATIENT, ORG, facts).allowed
    # Only the pharmacy's ORG mailbox, not a person's.
    facts = Facts(pharmacies=frozenset({PRO.address}))
    assert decide(PATIENT, PRO, facts).reason is Reason.PATIENT_CANNOT_START


@pytest.mark.parametrize("status", [s.value for s in State if s is not State.OPEN])
def test_patient_account_must_be_open(status: str) -> None:
    closed = Party(PATIENT2.address, Kind.PATIENT, status)
    assert decide(PRO, closed, Facts()).reason is Reason.RECIPIENT_NOT_OPEN
    sender = Party(PATIENT.address, Kind.PATIENT, status)
    assert decide(sender, PRO, Facts(conversation=conv())).reason is \
        Reason.SENDER_NOT_AUTHORISED


def test_shredded_mailbox_cannot_send() -> None:
    assert decide(SHREDDED_PRO, PRO, Facts()).reason is Reason.SENDER_NOT_AUTHORISED
    assert decide(SHREDDED_PATIENT, PRO, Facts(conversation=conv())).reason is \
        Reason.SENDER_NOT_AUTHORISED


def test_size_limit_for_patients_only() -> None:
    big = Facts(size=PATIENT_MAX_SIZE + 1)
    assert decide(PRO, PATIENT2, big).reason is Reason.TOO_LARGE
    assert decide(PRO, PATIENT2, Facts(size=PATIENT_MAX_SIZE)).allowed
    assert decide(PRO, REMOTE_PRO, big).allowed


KINDS = st.sampled_from(list(Kind))


@given(KINDS, KINDS, st.text(max_size=8), st.booleans(), st.integers(0, 2 * PATIENT_MAX_SIZE))
def test_invariants(sk: Kind, rk: Kind, status: str, closed: bool, size: int) -> None:
    sender = Party("a@x.fr", sk, status or "open")
    recipient = Party("b@y.fr", rk, "open")
    d = decide(sender, recipient, Facts(size=size, conversation=ConversationFacts(
        closed, frozenset({"b@y.fr"}), "a@x.fr")))
    patients = (Kind.PATIENT, Kind.REMOTE_PATIENT)
    if sk in patients and rk in patients:
        assert not d.allowed
    if rk in (Kind.OUTSIDE, Kind.INVALID, Kind.UNKNOWN_LOCAL) or sk is Kind.OUTSIDE:
        assert not d.allowed
    if sk is Kind.PATIENT and closed:
        assert not d.allowed


RECEIPT_EXPECTED = {"pro": A, "org": A, "app": A, "remote-pro": A,
                    "patient": Reason.RECEIPT_TO_NON_PROFESSIONAL,
                    "remote-patient": Reason.RECEIPT_TO_NON_PROFESSIONAL,
                    "unknown": Reason.UNKNOWN_RECIPIENT, "outside": Reason.OUTSIDE_TRUST_SPACE,
                    "invalid": Reason.INVALID_ADDRESS, "shredded-pro": Reason.MAILBOX_SHREDDED,
                    "shredded-patient": Reason.MAILBOX_SHREDDED}


@pytest.mark.parametrize("recipient", list(RECIPIENTS))
def test_system_receipt_rows(recipient: str) -> None:
    """Receipts (read, integration) reach professionals only, whatever the conversation."""
    facts = Facts(conversation=conv(closed=True), receipt=True)
    assert decide(SYSTEM, RECIPIENTS[recipient], facts).reason is RECEIPT_EXPECTED[recipient]


def test_patient_sender_has_no_receipt_exemption() -> None:
    assert decide(PATIENT, PRO, Facts(conversation=conv(closed=True), receipt=True)).reason \
        is Reason.CONVERSATION_CLOSED


@pytest.mark.parametrize("closed", [False, True])
@pytest.mark.parametrize("which", ["none", "own", "other"])
def test_can_reply_is_the_rule_decide_enforces(closed: bool, which: str) -> None:
    c = {"none": None, "own": conv(closed=closed),
         "other": ConversationFacts(closed, frozenset({PRO.address}), PATIENT2.address)}[which]
    assert can_reply(PATIENT, c) == decide(PATIENT, PRO, Facts(conversation=c))
