"""The send policy end to end: professionals over SMTP, the patient through the service the
webmail uses (Delivery.submit_as), conversations, Reply-To and FIN."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from mailserver.errors import PolicyDenied
from mailserver.policy import Reason
from mailserver.runtime import Runtime
from tests.conftest import INS, RPPS, add_patient, add_pro
from tests.smtp.conftest import message, submission


def _send(runtime: Runtime, tls: ssl.SSLContext, sender: AccountInfo, rcpts: list[str],
          raw: bytes) -> None:
    with submission(runtime, tls, sender.address) as c:
        c.sendmail(sender.address, rcpts, raw)


def _reply(patient: AccountInfo, to: str, in_reply_to: str = "", body: str = "Merci") -> bytes:
    irt = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    return (f"From: {patient.address}\r\nTo: {to}\r\nSubject: Re: Consultation\r\n"
            f"Message-ID: <r{abs(hash((to, body)))}@x>\r\n{irt}\r\n{body}\r\n").encode()


async def _count(services: Services, account: AccountInfo) -> int:
    return (await services.store.get_folder(account.id, "INBOX")).message_count


@pytest.fixture
async def people(services: Services) -> tuple[AccountInfo, AccountInfo, AccountInfo,
                                              AccountInfo]:
    doctor = await add_pro(services, "dr.martin")
    nurse = await add_pro(services, "ide.petit", RPPS[3], "60")
    patient = await add_patient(services, INS[0])
    other = await add_patient(services, INS[1])
    return doctor, nurse, patient, other


async def test_patient_cannot_start(services: Services, people: tuple) -> None:
    doctor, _nurse, patient, _other = people
    with pytest.raises(PolicyDenied) as err:
        await services.delivery.submit_as(patient, [doctor.address],
                                          _reply(patient, doctor.address))
    assert err.value.reason is Reason.PATIENT_CANNOT_START
    assert await _count(services, doctor) == 0


async def test_reply_inside_conversation(runtime: Runtime, services: Services,
                                         client_tls: ssl.SSLContext, people: tuple) -> None:
    doctor, nurse, patient, other = people
    first = message(doctor.address, patient.address, body="Vos résultats")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], first)
    (conv,) = await services.conversations.list_for_patient(patient.id)
    msgid = [line for line in first.decode().split("\r\n") if line.startswith("Message-ID")][0]
    msgid = msgid.split(": ", 1)[1]

    # By In-Reply-To (as a reply in a mail client would) ...
    await services.delivery.submit_as(patient, [doctor.address],
                                      _reply(patient, doctor.address, msgid))
    # ... or by conversation id (as the webmail does).
    await services.delivery.submit_as(patient, [doctor.address],
                                      _reply(patient, doctor.address, body="Encore"),
                                      conversation_id=conv.id)
    assert await _count(services, doctor) == 2
    # The patient's own copies land in their Sent folder, in the conversation.
    sent = await services.store.get_folder(patient.id, "Sent")
    infos = await services.store.list_messages(sent.id)
    assert [i.conversation_id for i in infos] == [conv.id, conv.id]

    # Not to someone else of the trust space, not to another patient.
    with pytest.raises(PolicyDenied) as err:
        await services.delivery.submit_as(patient, [nurse.address],
                                          _reply(patient, nurse.address),
                                          conversation_id=conv.id)
    assert err.value.reason is Reason.NOT_A_PARTICIPANT
    with pytest.raises(PolicyDenied) as err:
        await services.delivery.submit_as(patient, [other.address],
                                          _reply(patient, other.address),
                                          conversation_id=conv.id)
    assert err.value.reason is Reason.PATIENT_TO_PATIENT
    assert await _count(services, nurse) == 0 and await _count(services, other) == 0


async def test_professional_follow_up_stays_in_conversation(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext, people: tuple) -> None:
    doctor, _nurse, patient, _other = people
    first = message(doctor.address, patient.address, subject="A")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], first)
    (conv,) = await services.conversations.list_for_patient(patient.id)
    msgid = first.decode().split("Message-ID: ", 1)[1].split("\r\n", 1)[0]
    follow = message(doctor.address, patient.address, subject="Re: A",
                     extra=f"In-Reply-To: {msgid}\r\n")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], follow)
    assert [c.id for c in await services.conversations.list_for_patient(patient.id)] == [conv.id]


async def test_reply_to_address_replaces_sender(runtime: Runtime, services: Services,
                                                client_tls: ssl.SSLContext,
                                                people: tuple) -> None:
    doctor, nurse, patient, _other = people
    raw = message(doctor.address, patient.address, extra=f"Reply-To: {nurse.address}\r\n")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], raw)
    (conv,) = await services.conversations.list_for_patient(patient.id)
    assert conv.parties == frozenset({nurse.address})
    await services.delivery.submit_as(patient, [nurse.address], _reply(patient, nurse.address),
                                      conversation_id=conv.id)
    with pytest.raises(PolicyDenied):
        await services.delivery.submit_as(patient, [doctor.address],
                                          _reply(patient, doctor.address),
                                          conversation_id=conv.id)
    assert await _count(services, nurse) == 1


async def test_reply_to_outside_trust_space_is_ignored(runtime: Runtime, services: Services,
                                                       client_tls: ssl.SSLContext,
                                                       people: tuple) -> None:
    doctor, _nurse, patient, _other = people
    raw = message(doctor.address, patient.address, extra="Reply-To: someone@gmail.com\r\n")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], raw)
    (conv,) = await services.conversations.list_for_patient(patient.id)
    assert conv.parties == frozenset({doctor.address})


async def test_fin_header_closes_conversation(runtime: Runtime, services: Services,
                                              client_tls: ssl.SSLContext, people: tuple) -> None:
    doctor, _nurse, patient, _other = people
    raw = message(doctor.address, patient.address, extra="X-MSS-MES: FIN\r\n")
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address], raw)
    (conv,) = await services.conversations.list_for_patient(patient.id)
    assert conv.closed
    with pytest.raises(PolicyDenied) as err:
        await services.delivery.submit_as(patient, [doctor.address],
                                          _reply(patient, doctor.address),
                                          conversation_id=conv.id)
    assert err.value.reason is Reason.CONVERSATION_CLOSED


async def test_fin_subject_closes_all_threads_with_that_professional(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext, people: tuple) -> None:
    doctor, nurse, patient, _other = people
    for subject in ("Premier", "Second"):
        await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address],
                                message(doctor.address, patient.address, subject=subject))
    await asyncio.to_thread(_send, runtime, client_tls, nurse, [patient.address],
                            message(nurse.address, patient.address, subject="Soins"))
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address],
                            message(doctor.address, patient.address, subject="[FIN]"))
    convs = await services.conversations.list_for_patient(patient.id)
    by_starter: dict[str, list[bool]] = {}
    for c in convs:
        by_starter.setdefault(c.started_by, []).append(c.closed)
    # The bare "[FIN]" message joined the latest thread instead of opening a third one.
    assert by_starter[doctor.address] == [True, True]
    assert by_starter[nurse.address] == [False]


async def test_conversation_of_another_patient_is_refused(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext, people: tuple) -> None:
    doctor, _nurse, patient, other = people
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [other.address],
                            message(doctor.address, other.address))
    (conv,) = await services.conversations.list_for_patient(other.id)
    with pytest.raises(PolicyDenied) as err:
        await services.delivery.submit_as(patient, [doctor.address],
                                          _reply(patient, doctor.address),
                                          conversation_id=conv.id)
    assert err.value.reason is Reason.PATIENT_CANNOT_START


async def test_jobs_enqueued_for_patient_delivery(runtime: Runtime, services: Services,
                                                  client_tls: ssl.SSLContext,
                                                  people: tuple) -> None:
    doctor, _nurse, patient, _other = people
    await asyncio.to_thread(_send, runtime, client_tls, doctor, [patient.address],
                            message(doctor.address, patient.address))
    # Handlers may already have run them (the runtime's workers); count all jobs ever made.
    from sqlalchemy import select

    from mailserver.store.models import Job

    async with services.db.session() as s:
        kinds = sorted((await s.execute(select(Job.kind).where(
            Job.account_id == patient.id))).scalars().all())
    assert kinds == ["file_documents", "notify_patient"]


class _Pharmacies:
    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    async def pharmacies_for(self, patient_account_id: int) -> frozenset[str]:
        return self.allowed


async def test_patient_may_write_first_to_a_pharmacy_it_visited(services: Services,
                                                                 people: tuple) -> None:
    _doctor, _nurse, patient, _other = people
    pharmacy = await services.directory.add_organisation(
        email="pharmacie@hopital.mssante.test", name="Pharmacie", structure_id="1750000000",
        profession="21", password="a-long-password")  # noqa: S106 - test account
    services.delivery.pharmacies = _Pharmacies(frozenset({pharmacy.address}))
    raw = _reply(patient, pharmacy.address, body="Mon ordonnance est-elle prête ?")
    report = await services.delivery.submit_as(patient, [pharmacy.address], raw)
    assert report.accepted == [pharmacy.address]
    # The message opened a conversation with the pharmacy, visible in the patient's Sent.
    (conv,) = await services.conversations.list_for_patient(patient.id)
    assert conv.parties == frozenset({pharmacy.address})
    assert report.sent_copy is not None
    # The pharmacy's answer threads into it.
    answer = (f"From: {pharmacy.address}\r\nTo: {patient.address}\r\nSubject: Re\r\n"
              f"In-Reply-To: {raw.decode().split('Message-ID: ')[1].split(chr(13))[0]}\r\n"
              "\r\nOui\r\n").encode()
    await services.delivery.submit_as(pharmacy, [patient.address], answer)
    assert [c.id for c in await services.conversations.list_for_patient(patient.id)] == [conv.id]
    # Not to a pharmacy it did not visit.
    services.delivery.pharmacies = _Pharmacies(frozenset())
    with pytest.raises(PolicyDenied):
        await services.delivery.submit_as(patient, [pharmacy.address],
                                          _reply(patient, pharmacy.address, body="Autre"))
