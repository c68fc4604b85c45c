"""The IMAP summary of a delivered message is built just after the commit (not at the first
SORT/THREAD/FETCH), for the recipient's copy and the sender's Sent copy; not for patients."""

from __future__ import annotations

from sqlalchemy import select

from mailserver.store.models import Message
from tests.conftest import INS, RPPS, add_pro

from .conftest import Imap, message, open_raw


async def _summarised(imap: Imap) -> dict[int, bool]:
    async with imap.services.db.session() as s:
        return {mid: meta is not None for mid, meta in (await s.execute(
            select(Message.id, Message.meta_enc))).all()}


async def test_delivered_copies_are_summarised_after_the_commit(imap: Imap) -> None:
    services = imap.services
    assert services.summaries is not None
    author = await add_pro(services, "dr.durand", RPPS[1])
    patient, _ = await services.directory.add_patient(ins=INS[0], name="Marie Curie")
    party = await services.delivery.party_of(author)
    report = await services.delivery.deliver(party, author.address, [imap.user], message(1),
                                             authenticated=author)
    to_patient = await services.delivery.deliver(party, author.address, [patient.address],
                                                 message(2))
    inbox, sent = report.outcomes[0].result, report.sent_copy
    assert inbox is not None and sent is not None
    assert not any((await _summarised(imap)).values())  # nothing on the SMTP path
    await services.summaries.drain()
    done = await _summarised(imap)
    assert done[inbox.message_id] and done[sent.message_id]
    patient_copy = to_patient.outcomes[0].result
    assert patient_copy is not None and not done[patient_copy.message_id]  # no mail client
    c = await open_raw(imap)
    await c.cmd("SELECT INBOX")
    assert (await c.cmd("SORT (SUBJECT) UTF-8 ALL"))[0] == b"* SORT 1\r\n"
    assert b'"Compte rendu 1"' in (await c.cmd("FETCH 1 ENVELOPE"))[0]
    await c.close()


async def test_appended_messages_are_stored_with_their_summary(imap: Imap) -> None:
    """APPEND stores the sealed summary with the message (one MULTIAPPEND: both), so the
    first FETCH ENVELOPE / BODYSTRUCTURE reads it instead of parsing the message."""
    c = await open_raw(imap)
    one, two = message(1), message(2, subject="Lettre de liaison")
    await c.write(b"ap APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(two), two))
    assert (await c.until("ap"))[-1].startswith(b"ap OK")
    assert list((await _summarised(imap)).values()) == [True, True]
    await c.cmd("SELECT INBOX")
    out = await c.cmd("FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    assert b'"Compte rendu 1"' in out[0] and b'"Lettre de liaison' in out[1]
    assert b'("TEXT" "PLAIN"' in out[0].upper()
    await c.close()
