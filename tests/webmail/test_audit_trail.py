"""The audit trail of the patient's webmail (login, opening a conversation, the read receipt)
and of the document store (filing, a professional's read, the treating doctor's consent)."""

from __future__ import annotations

from mailserver.store.audit_queries import AuditQuery, search
from tests.attachments.corpus import make_pdf
from tests.audit.helpers import assert_no_content, rows
from tests.webmail.conftest import PATIENT_PASSWORD, World

SUBJECT = "Sujet-secret-4471"
BODY = "Corps-confidentiel-8812"
FILENAME = "compte-rendu-nominatif-5512.pdf"


async def test_webmail_open_receipt_documents(logged_in: World) -> None:
    w = logged_in
    s = w.services
    await w.pro_writes(SUBJECT, BODY, headers={"Disposition-Notification-To": w.pro.address},
                       attachments=[(FILENAME, "application/pdf",
                                     make_pdf("Compte rendu operatoire"))])
    assert await s.runner.run_due() >= 1  # the filer (and the patient's notice)
    [cid] = await w.conversation_ids()
    r = await w.client.get(f"/conversations/{cid}")
    assert r.status == 200
    # Marking the page read wrote the read and the flag change in its transaction: there
    # without flushing the batched rows.
    written = [x.action async for x in search(s.db, AuditQuery(address=w.patient.address))
               if x.protocol == "webmail" and x.action != "login"]
    assert written == ["message-read", "flags-changed"]

    mine = await rows(s, w.patient.address)
    logins = [r for r in mine if r.action == "login"]
    assert logins and logins[-1].protocol == "webmail" and logins[-1].client
    read = [r for r in mine if r.action == "message-read"]
    assert len(read) == 1 and read[0].protocol == "webmail"
    assert read[0].details == {"conversation_id": cid, "count": 1}
    [seen] = [r for r in mine if r.action == "flags-changed"]
    assert seen.details["flags"] == ["\\Seen"] and seen.details["count"] == 1
    assert seen.details["conversation_id"] == cid and seen.details["mode"] == "add"
    receipts = {r.details["receipt"]: r for r in mine if r.action == "receipt-sent"}
    assert set(receipts) == {"displayed", "processed"}  # the reader's, and the filer's
    assert receipts["displayed"].details["to"] == [w.pro.address]
    assert receipts["displayed"].account_id == w.patient.id
    filed = [r for r in mine if r.action == "document-filed"]
    assert len(filed) == 1 and filed[0].details["label"]
    [doc_id] = filed[0].details["documents"]
    received = [r for r in mine if r.action == "message-received"]
    assert len(received) == 1 and received[0].details["from"] == w.pro.address

    await s.documents.consents.set_treating_doctor(w.patient.id, w.pro)
    await s.documents.read(w.pro, w.patient.id, doc_id)
    mine = await rows(s, w.patient.address)
    consent = [r for r in mine if r.action == "consent-changed"]
    assert len(consent) == 1 and consent[0].details["kind"] == "treating_doctor"
    doc_read = [r for r in mine if r.action == "document-read"]
    assert len(doc_read) == 1 and doc_read[0].actor == w.pro.address
    assert doc_read[0].details["documents"] == [doc_id]
    await assert_no_content(s, SUBJECT, BODY, FILENAME, "Compte rendu", PATIENT_PASSWORD)
