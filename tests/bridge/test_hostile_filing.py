"""The bridge never files a hostile attachment that carries no XDM metadata: bombs, nested or
truncated archives, 20,000-member zips and documents that are not what they claim are refused,
reported with the integration error 906 in the MDN, and nothing of them reaches the patient's
documents (the genuine document next to them is filed)."""

from __future__ import annotations

import pytest

from mailserver.app import Services
from mailserver.reports.mdn import IntegrationError, parse_mdn
from tests.attachments.corpus import (
    Attachment,
    make_pdf,
    many_members_zip,
    nested_zip,
    random_bytes,
    truncated_zip,
    zip_bomb,
)
from tests.bridge.helpers import deliver_stored, filer_of, message, patient, pro, store_of
from tests.conftest import DOMAIN, INS

SENDER = f"dr.martin@{DOMAIN}"
HOSTILE = [
    Attachment(zip_bomb(), "resultats.zip", "application", "zip"),
    Attachment(nested_zip(), "archives.zip", "application", "zip"),
    Attachment(many_members_zip(), "lot.zip", "application", "zip"),
    Attachment(truncated_zip(), "coupe.zip", "application", "zip"),
    Attachment(random_bytes(), "scan.pdf", "application", "pdf"),
]


async def _run(services: Services, attachments: list[Attachment]) -> tuple[object, list[bytes],
                                                                          list[str]]:
    dr = await pro(services, "dr.martin")
    pt = await patient(services)
    raw = message(attachments, sender=SENDER, headers={"Disposition-Notification-To": SENDER})
    out = await filer_of(services).run(pt.id, await deliver_stored(services, pt, raw))
    folder = await services.store.get_folder(dr.id, "INBOX")
    inbox = [await services.store.read_raw(m.id) for m in await services.store.list_messages(
        folder.id)]
    info = await services.directory.by_ins(INS[0])
    assert info is not None
    filed = [d.filename for d in await store_of(services).list(info, info.id)]
    return out, inbox, filed


@pytest.mark.parametrize("index", range(len(HOSTILE)),
                         ids=[a.filename or "" for a in HOSTILE])
async def test_hostile_attachment_alone_is_not_filed_906(services: Services, index: int) -> None:
    out, inbox, filed = await _run(services, [HOSTILE[index]])
    assert filed == []
    assert out.status == "not_filed" and out.error is IntegrationError.OTHER  # type: ignore[attr-defined]
    mdn = parse_mdn(inbox[-1])
    assert mdn.disposition == "processed" and mdn.error_code == 906


async def test_hostile_corpus_refused_genuine_document_filed(services: Services) -> None:
    genuine = Attachment(make_pdf("Ordonnance : amoxicilline 1 g"), "ordonnance.pdf",
                         "application", "pdf")
    out, inbox, filed = await _run(services, [*HOSTILE, genuine])
    assert filed == ["ordonnance.pdf"]
    assert out.status == "partial" and out.error is IntegrationError.OTHER  # type: ignore[attr-defined]
    mdn = parse_mdn(inbox[-1])
    assert mdn.disposition == "processed" and mdn.error_code == 906
