"""Shared builders for the bridge tests: professionals, patients, messages, stored copies."""

from __future__ import annotations

from email.message import EmailMessage

from attachments.labels import Label
from dossier_bridge.filing import Filer
from dossier_bridge.store import DocumentStore
from mailserver.app import Services
from mailserver.directory.service import AccountInfo
from tests.attachments.corpus import Attachment, XdmDoc, make_message, make_xdm
from tests.conftest import DOMAIN, INS, PASSWORD, PATIENT_DOMAIN, RPPS

# One type code per label (document-types.csv), for XDM packages reaching every label.
TYPE_PER_LABEL: dict[Label, tuple[str, str]] = {
    Label.RADIO_SC: ("18748-4", "31"),
    Label.SYNTHESE: ("60591-5", "11"),
    Label.ORD_SOIN: ("57833-6", "42"),
    Label.CPT_REND: ("11488-4", "10"),
    Label.BIOLOGIE: ("11502-2", "10"),
    Label.DEPISTAG: ("96173-0", "52"),
    Label.CERT_MED: ("89601-9", "52"),
    Label.AUTR_DOC: ("EXPPAT_2", "90"),
}

XDM_HEADERS = {"X-MSS-INS": "O", "X-MSS-NIL": "LogicielTest"}


def store_of(s: Services) -> DocumentStore:
    return s.documents


def filer_of(s: Services) -> Filer:
    return Filer(store=s.store, documents=store_of(s), directory=s.directory,
                 receipts=s.system_mail, patient_domain=s.config.patient_domain)


async def pro(s: Services, local: str, profession: str = "10", *, rpps: str = RPPS[0],
              structure_id: str | None = None) -> AccountInfo:
    return await s.directory.add_professional(
        rpps=rpps, email=f"{local}@{DOMAIN}", name=local.replace(".", " ").title(),
        profession=profession, password=PASSWORD, structure_id=structure_id)


async def patient(s: Services, ins: str = INS[0]) -> AccountInfo:
    info, _ = await s.directory.add_patient(ins=ins, name="Marie Dupont")
    return info


def message(attachments: list[Attachment], *, sender: str, to: str = "",
            headers: dict[str, str] | None = None, subject: str = "Documents",
            msgid: str | None = None) -> bytes:
    msg: EmailMessage = make_message(attachments, subject=subject, headers=headers)
    msg.replace_header("From", sender)
    msg.replace_header("To", to or f"{INS[0]}@{PATIENT_DOMAIN}")
    if msgid:
        msg.replace_header("Message-ID", msgid)
    return bytes(msg)


def xdm_attachment(docs: list[XdmDoc]) -> Attachment:
    return Attachment(make_xdm(docs), "IHE_XDM.ZIP", "application", "zip")


async def deliver_stored(s: Services, patient_info: AccountInfo, raw: bytes) -> int:
    """Store ``raw`` in the patient's INBOX (as delivery does) and return the message row id."""
    res = await s.store.append(patient_info.id, "INBOX", raw)
    return res.message_id
