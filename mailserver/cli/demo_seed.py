"""Demo content: a few realistic conversations, so a newcomer sees the product at once.

Seeded once, into a fresh demo data dir, through the same delivery path as real mail (policy,
sealing, conversations, filing and notification jobs): nothing here writes to the store itself.

- Dr Claire Martin sends Marie DUPONT her blood test results as an IHE XDM archive (a PDF lab
  report with its ebRIM metadata, LOINC 11502-2): the bridge files it under "Résultats de
  biologie" when the server starts.
- The Pharmacie Centrale tells Marie her treatment is ready.
- Pr Luc Moreau follows up a consultation, Marie replies, and he closes the conversation
  (`X-MSS-MES: FIN`, RFC-less MSSanté header) so she can read it but no longer answer.
- Dr Claire Martin writes to Jean DURAND.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol
from xml.sax.saxutils import escape

from fpdf import FPDF

__all__ = ["DemoParties", "seed_demo_mail", "lab_report_xdm"]

INS_OID_NIR = "1.2.250.1.213.1.4.8"
_CLASS_SCHEME = "41a5887f-8865-4c09-adf7-e362475b143a"
_TYPE_SCHEME = "f0306f51-975f-434e-a61c-c59651d33983"
_FORMAT_SCHEME = "a09d5840-386c-46f2-b5ad-9c3699a4309d"
_CONF_SCHEME = "f4f85eac-e6cb-4883-b524-f2705394840f"
_AUTHOR_SCHEME = "93606bcf-9494-43ec-9b4e-a7748d1a838d"
_PATIENT_ID = "58a6f841-87b3-4a3e-92fd-a8ffeff98427"
_UNIQUE_ID = "2e82c1f6-a085-4c72-9da3-8640a32e42ab"


class _Account(Protocol):
    @property
    def address(self) -> str: ...


Submit = Callable[[_Account, Sequence[str], bytes, int | None], Awaitable[dict[str, int]]]
"""Deliver ``raw`` from a local account to recipients (optionally inside a conversation);
returns the conversation id per recipient address."""


@dataclass(frozen=True)
class DemoParties:
    """The demo accounts the seed writes as and to."""

    doctor: _Account
    doctor_name: str
    doctor_rpps: str
    specialist: _Account
    pharmacy: _Account
    patient: _Account
    patient_ins: str
    patient_name: str
    other_patient: _Account


def _pdf(lines: Sequence[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _slot(name: str, value: str) -> str:
    return (f'<rim:Slot name="{name}"><rim:ValueList><rim:Value>{escape(value)}</rim:Value>'
            "</rim:ValueList></rim:Slot>")


def _classification(scheme: str, code: str, system: str, display: str) -> str:
    return (f'<rim:Classification classificationScheme="urn:uuid:{scheme}" '
            f'classifiedObject="Document01" nodeRepresentation="{escape(code)}" '
            f'id="c-{scheme[:8]}">{_slot("codingScheme", system)}'
            f'<rim:Name><rim:LocalizedString value="{escape(display)}"/></rim:Name>'
            "</rim:Classification>")


def lab_report_xdm(*, ins: str, patient_name: str, doctor_name: str, rpps: str,
                   when: datetime) -> bytes:
    """An IHE_XDM.ZIP holding one PDF lab report and its ebRIM metadata (ITI TF-3 4.2.3.2)."""
    pdf = _pdf([
        "Laboratoire de biologie medicale - demonstration",
        f"Patient : {patient_name}",
        f"Prescripteur : {doctor_name}",
        f"Prelevement du {when:%d/%m/%Y}",
        "Hemoglobine : 13,8 g/dL (12,0 - 16,0)",
        "Glycemie a jeun : 0,92 g/L (0,70 - 1,10)",
        "Cholesterol LDL : 1,21 g/L (< 1,60)",
        "Conclusion : bilan dans les valeurs de reference.",
    ])
    _, given, family = doctor_name.split(" ", 2)  # "Dr Claire Martin"
    stamp = when.strftime("%Y%m%d%H%M%S")
    metadata = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList>'
        '<rim:ExtrinsicObject id="Document01" mimeType="application/pdf" '
        'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">'
        + _slot("creationTime", stamp) + _slot("serviceStartTime", stamp)
        + _slot("hash", hashlib.sha1(pdf).hexdigest())  # noqa: S324 - XDS metadata uses SHA-1
        + _slot("size", str(len(pdf))) + _slot("languageCode", "fr-FR")
        + _slot("URI", "DOC0001.PDF")
        + '<rim:Name><rim:LocalizedString value="Compte rendu d\'examens biologiques"/>'
        "</rim:Name>"
        f'<rim:Classification classificationScheme="urn:uuid:{_AUTHOR_SCHEME}" '
        'classifiedObject="Document01" nodeRepresentation="" id="auth-Document01">'
        + _slot("authorPerson", f"8{rpps}^{family.upper()}^{given}^^^Dr^^^"
                "&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS")
        + _slot("authorRole", "10^Médecin^1.2.250.1.213.1.1.4.5")
        + "</rim:Classification>"
        + _classification(_CLASS_SCHEME, "10", "1.2.250.1.213.1.1.4.1",
                          "Compte rendu")
        + _classification(_TYPE_SCHEME, "11502-2", "2.16.840.1.113883.6.1",
                          "Compte rendu d'examens biologiques")
        + _classification(_FORMAT_SCHEME, "urn:ihe:iti:xds-sd:pdf:2008",
                          "1.3.6.1.4.1.19376.1.2.3", "PDF")
        + _classification(_CONF_SCHEME, "N", "2.16.840.1.113883.5.25", "Normal")
        + f'<rim:ExternalIdentifier identificationScheme="urn:uuid:{_PATIENT_ID}" '
        f'value="{ins}^^^&amp;{INS_OID_NIR}&amp;ISO^NH" id="pid-Document01" '
        'registryObject="Document01"><rim:Name>'
        '<rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>'
        "</rim:ExternalIdentifier>"
        f'<rim:ExternalIdentifier identificationScheme="urn:uuid:{_UNIQUE_ID}" '
        f'value="1.2.250.1.999.3.{stamp}" id="uid-Document01" registryObject="Document01"/>'
        "</rim:ExtrinsicObject><rim:RegistryPackage id=\"SubmissionSet01\"/>"
        "</rim:RegistryObjectList></lcm:SubmitObjectsRequest>"
    ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.TXT", "Archive IHE XDM de démonstration\r\n")
        zf.writestr("INDEX.HTM", "<html><body>Résultats de biologie</body></html>")
        zf.writestr("IHE_XDM/SUBSET01/METADATA.XML", metadata)
        zf.writestr("IHE_XDM/SUBSET01/DOC0001.PDF", pdf)
    return buf.getvalue()


def _message(frm: _Account, from_name: str, to: _Account, subject: str, body: str, *,
             when: datetime, reply_to: EmailMessage | None = None,
             headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{from_name} <{frm.address}>"
    msg["To"] = to.address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=frm.address.rpartition("@")[2])
    if reply_to is not None:
        msg["In-Reply-To"] = reply_to["Message-ID"]
        msg["References"] = reply_to["Message-ID"]
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


async def seed_demo_mail(parties: DemoParties, submit: Submit, *,
                         now: datetime | None = None) -> int:
    """Send the demo conversations; returns how many messages were delivered."""
    now = now or datetime.now(timezone.utc)
    p = parties
    sent = 0

    async def send(account: _Account, msg: EmailMessage,
                   conversation: int | None = None) -> dict[str, int]:
        nonlocal sent
        ids = await submit(account, [msg["To"]], msg.as_bytes(), conversation)
        sent += 1
        return ids

    # 1. Lab results, filed in Documents by the bridge.
    when = now - timedelta(days=3)
    lab = _message(p.doctor, p.doctor_name, p.patient, "Résultats de votre bilan sanguin",
                   "Bonjour Madame,\n\nVous trouverez ci-joint les résultats de votre bilan "
                   "sanguin du " + when.strftime("%d/%m/%Y") + ". Ils sont dans les valeurs "
                   "de référence ; nous en reparlerons à votre prochaine consultation.\n\n"
                   "Bien cordialement,\n" + p.doctor_name + "\n", when=when)
    lab.add_attachment(lab_report_xdm(ins=p.patient_ins, patient_name=p.patient_name,
                                      doctor_name=p.doctor_name, rpps=p.doctor_rpps,
                                      when=when - timedelta(days=1)),
                       maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    await send(p.doctor, lab)

    # 2. The pharmacy.
    await send(p.pharmacy, _message(
        p.pharmacy, "Pharmacie Centrale", p.patient, "Votre traitement est disponible",
        "Bonjour,\n\nLe traitement prescrit par votre médecin est prêt. Vous pouvez venir le "
        "chercher à l'officine du lundi au samedi, de 9 h à 19 h 30.\n\nPharmacie Centrale\n",
        when=now - timedelta(days=2)))

    # 3. A consultation follow-up: question, the patient's reply, then closed by the doctor.
    first = _message(p.specialist, "Pr Luc Moreau", p.patient, "Suite de votre consultation",
                     "Bonjour Madame,\n\nComment se passe la reprise de votre traitement depuis "
                     "notre consultation ? N'hésitez pas à me répondre ici.\n\n"
                     "Pr Luc Moreau\n", when=now - timedelta(days=6))
    ids = await send(p.specialist, first)
    conversation = ids.get(p.patient.address)
    reply = _message(p.patient, p.patient_name, p.specialist, "Re: Suite de votre consultation",
                     "Bonjour Professeur,\n\nTout se passe bien, je n'ai plus de douleurs.\n\n"
                     "Merci,\n" + p.patient_name + "\n",
                     when=now - timedelta(days=5), reply_to=first)
    await send(p.patient, reply, conversation)
    await send(p.specialist, _message(
        p.specialist, "Pr Luc Moreau", p.patient, "Re: Suite de votre consultation",
        "Très bien, je clos cette conversation. Prenez rendez-vous si les douleurs "
        "reviennent.\n\nPr Luc Moreau\n", when=now - timedelta(days=5, hours=-3),
        reply_to=reply, headers={"X-MSS-MES": "FIN"}))

    # 4. Another patient.
    await send(p.doctor, _message(
        p.doctor, p.doctor_name, p.other_patient, "Votre rendez-vous de contrôle",
        "Bonjour Monsieur,\n\nVotre rendez-vous de contrôle est confirmé pour le mois "
        "prochain. Pensez à apporter vos derniers résultats.\n\n" + p.doctor_name + "\n",
        when=now - timedelta(days=1)))
    return sent
