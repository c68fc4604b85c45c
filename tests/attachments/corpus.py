"""Builders for the test corpus: CDA documents, ebRIM metadata, XDM zips, PDFs, PNGs, messages.

Everything is generated here; no file is read from disk. Test identities only: INS under the test
OID 1.2.250.1.213.1.4.10, test RPPS 99700218896.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from xml.sax.saxutils import escape, quoteattr

from fpdf import FPDF

INS = "279035121518989"
INS_OID_TEST = "1.2.250.1.213.1.4.10"
INS_OID_NIR = "1.2.250.1.213.1.4.8"
RPPS = "99700218896"


def make_cda(
    code: str = "11488-4",
    *,
    title: str = "Compte rendu de consultation",
    ins: str = INS,
    ins_oid: str = INS_OID_TEST,
    rpps: str = RPPS,
    confidentiality: str = "N",
    effective: str = "20250115103000+0100",
    code_system: str = "2.16.840.1.113883.6.1",
) -> bytes:
    """A minimal CDA R2 document with a French header."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="1.2.250.1.999.1" extension="DOC-42"/>
  <code code={quoteattr(code)} codeSystem={quoteattr(code_system)} displayName="Doc"/>
  <title>{escape(title)}</title>
  <effectiveTime value="{effective}"/>
  <confidentialityCode code="{confidentiality}" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="1.2.250.1.999.2" extension="SET-1"/>
  <versionNumber value="2"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.999.9" extension="IPP123"/>
    <id root="{ins_oid}" extension="{ins}"/>
    <patient><name><given>Jeanne</given><family>DUPONT</family></name></patient>
  </patientRole></recordTarget>
  <author>
    <time value="20250115100000+0100"/>
    <assignedAuthor>
      <id root="1.2.250.1.71.4.2.1" extension="8{rpps}"/>
      <code code="G15_10/SM26" codeSystem="1.2.250.1.213.1.1.5.5"
            displayName="Qualifié en médecine générale"/>
      <assignedPerson><name><prefix>Dr</prefix><given>Émile</given><family>MARTIN</family></name>
      </assignedPerson>
      <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1750000001"/>
        <name>Cabinet Martin</name></representedOrganization>
    </assignedAuthor>
  </author>
  <component><nonXMLBody><text mediaType="text/plain">corps</text></nonXMLBody></component>
</ClinicalDocument>
""".encode()


@dataclass
class XdmDoc:
    """One document to put in an XDM zip, with its metadata (overridable to build bad cases)."""

    content: bytes
    name: str = "DOC0001.XML"
    type_code: str | None = "11488-4"
    class_code: str | None = "10"
    mime_type: str = "text/xml"
    title: str = "Compte rendu"
    ins: str = INS
    ins_oid: str = INS_OID_NIR
    declared_hash: str | None = None
    declared_size: int | None = None
    uri: str | None = None
    confidentiality: tuple[str, ...] = ("N",)
    extra: dict[str, str] = field(default_factory=dict)


def _slot(name: str, *values: str) -> str:
    inner = "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{inner}</rim:ValueList></rim:Slot>'


def _classification(scheme: str, obj: str, code: str, system: str, display: str) -> str:
    return (
        f'<rim:Classification classificationScheme="urn:uuid:{scheme}" classifiedObject="{obj}" '
        f'nodeRepresentation="{escape(code)}" id="c-{scheme[:8]}-{obj}">'
        f"{_slot('codingScheme', system)}"
        f'<rim:Name><rim:LocalizedString value="{escape(display)}"/></rim:Name>'
        "</rim:Classification>"
    )


def make_metadata(docs: list[XdmDoc]) -> bytes:
    """An ebRIM SubmitObjectsRequest describing `docs` (ITI TF-3 4.2.3.2)."""
    objects = []
    for index, doc in enumerate(docs, start=1):
        obj = f"Document{index:02d}"
        sha1 = doc.declared_hash or hashlib.sha1(doc.content).hexdigest()  # noqa: S324
        size = doc.declared_size if doc.declared_size is not None else len(doc.content)
        parts = [
            f'<rim:ExtrinsicObject id="{obj}" mimeType="{doc.mime_type}" '
            f'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">',
            _slot("creationTime", "20250115093000"),
            _slot("serviceStartTime", "20250115"),
            _slot("serviceStopTime", "202501151200"),
            _slot("hash", sha1),
            _slot("size", str(size)),
            _slot("languageCode", "fr-FR"),
            _slot("URI", doc.uri if doc.uri is not None else doc.name),
            _slot("sourcePatientId", "IPP123^^^&1.2.250.1.999.9&ISO^PI"),
            f'<rim:Name><rim:LocalizedString value="{escape(doc.title)}"/></rim:Name>',
            "<rim:Classification "
            'classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"'
            f' classifiedObject="{obj}" nodeRepresentation="" id="auth-{obj}">'
            + _slot(
                "authorPerson", f"8{RPPS}^MARTIN^Émile^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
            )
            + _slot(
                "authorInstitution",
                "Cabinet Martin^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^11750000001",
            )
            + _slot("authorRole", "10^Médecin^1.2.250.1.213.1.1.4.5")
            + _slot(
                "authorSpecialty", "G15_10/SM26^Qualifié en médecine générale^1.2.250.1.213.1.1.5.5"
            )
            + "</rim:Classification>",
        ]
        if doc.class_code:
            parts.append(
                _classification(
                    "41a5887f-8865-4c09-adf7-e362475b143a",
                    obj,
                    doc.class_code,
                    "1.2.250.1.213.1.1.4.1",
                    "Classe",
                )
            )
        if doc.type_code:
            parts.append(
                _classification(
                    "f0306f51-975f-434e-a61c-c59651d33983",
                    obj,
                    doc.type_code,
                    "2.16.840.1.113883.6.1",
                    "Type",
                )
            )
        parts.append(
            _classification(
                "a09d5840-386c-46f2-b5ad-9c3699a4309d",
                obj,
                "urn:ihe:iti:xds-sd:pdf:2008",
                "1.3.6.1.4.1.19376.1.2.3",
                "PDF",
            )
        )
        for conf in doc.confidentiality:
            parts.append(
                _classification(
                    "f4f85eac-e6cb-4883-b524-f2705394840f",
                    obj,
                    conf,
                    "2.16.840.1.113883.5.25",
                    "Confidentialité",
                )
            )
        parts.append(
            "<rim:ExternalIdentifier identificationScheme="
            '"urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" '
            f'value="{doc.ins}^^^&amp;{doc.ins_oid}&amp;ISO^NH" id="pid-{obj}" '
            f'registryObject="{obj}"><rim:Name>'
            '<rim:LocalizedString value="XDSDocumentEntry.patientId"/>'
            "</rim:Name></rim:ExternalIdentifier>"
        )
        parts.append(
            "<rim:ExternalIdentifier identificationScheme="
            '"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" '
            f'value="1.2.250.1.999.3.{index}" id="uid-{obj}" registryObject="{obj}"/>'
        )
        parts.append("</rim:ExtrinsicObject>")
        objects.append("".join(parts))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList>'
        + "".join(objects)
        + '<rim:RegistryPackage id="SubmissionSet01"/></rim:RegistryObjectList>'
        "</lcm:SubmitObjectsRequest>"
    ).encode()


def make_zip(members: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding `members` in order (names written as given, even hostile ones)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(
                zipfile.ZipInfo(name, date_time=(2025, 1, 15, 10, 0, 0)),
                data,
                compress_type=compression,
            )
    return buf.getvalue()


def make_xdm(
    docs: list[XdmDoc],
    *,
    metadata: bytes | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """An IHE_XDM.ZIP with README.TXT, INDEX.HTM, METADATA.XML and the documents."""
    members = [
        ("README.TXT", b"Archive IHE XDM\r\n"),
        ("INDEX.HTM", b"<html><body>XDM</body></html>"),
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata if metadata is not None else make_metadata(docs),
        ),
    ]
    members += [(f"IHE_XDM/SUBSET01/{d.name}", d.content) for d in docs]
    members += extra or []
    return make_zip(members)


def make_pdf(text: str | None, *, pages: int = 1) -> bytes:
    """A PDF with `text` on each page, or a drawing only (no text layer) when `text` is None."""
    pdf = FPDF()
    pdf.set_compression(False)
    for _ in range(pages):
        pdf.add_page()
        if text is None:
            pdf.rect(20, 20, 100, 60, style="F")
        else:
            pdf.set_font("helvetica", size=12)
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_png(width: int = 2, height: int = 2) -> bytes:
    """A tiny valid PNG (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass
class Attachment:
    """An attachment for `make_message`."""

    data: bytes
    filename: str | None
    maintype: str = "application"
    subtype: str = "octet-stream"
    cte: str | None = None  # None: let the email package choose (base64 for binary)


def make_message(
    attachments: list[Attachment],
    *,
    subject: str = "Documents",
    body: str = "Bonjour,\nveuillez trouver les documents.\n",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/mixed message from a professional to a patient address."""
    msg = EmailMessage(policy=default_policy)
    msg["From"] = "emile.martin@medecin.mssante.fr"
    msg["To"] = f"{INS}@patient.mssante.fr"
    msg["Subject"] = subject
    msg["Message-ID"] = "<test@medecin.mssante.fr>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for att in attachments:
        kwargs: dict[str, object] = {"maintype": att.maintype, "subtype": att.subtype}
        if att.filename is not None:
            kwargs["filename"] = att.filename
        if att.cte is not None:
            kwargs["cte"] = att.cte
        msg.add_attachment(att.data, **kwargs)  # type: ignore[arg-type]
    return msg


def billion_laughs() -> bytes:
    """The classic entity-expansion document."""
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", ' <!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = f"lol{i - 1}" if i > 1 else "lol"
        lines.append(f' <!ENTITY lol{i} "{("&" + prev + ";") * 10}">')
    lines += ["]>", "<lolz>&lol9;</lolz>"]
    return "\n".join(lines).encode()


def xxe(root: str = '<ClinicalDocument xmlns="urn:hl7-org:v3">&xxe;</ClinicalDocument>') -> bytes:
    """An external-entity document reading /etc/passwd."""
    return (
        '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + root
    ).encode()


# --- Hostile archives and documents (no XDM metadata) --------------------------------------


def _raw_zip(name: str, deflated: bytes, *, declared_size: int, crc: int = 0) -> bytes:
    """A one-member zip written field by field (APPNOTE 4.3.7, 4.3.12, 4.3.16), so the
    declared sizes can be anything. The CRC is never reached: readers must stop earlier."""
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x5A2F, crc, len(deflated),
                        declared_size, len(fname), 0) + fname
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x5A2F, crc,
                          len(deflated), declared_size, len(fname), 0, 0, 0, 0, 0, 0) + fname
    offset = len(local) + len(deflated)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
    return local + deflated + central + end


def zip_bomb(mib: int = 2048, *, lie: bool = False) -> bytes:
    """About 2 MB that inflate to `mib` MiB of zeros (2 GiB by default). Built from one
    full-flushed deflate block repeated, so making it costs no 2 GiB of compression. With
    `lie`, the headers declare 1 KiB."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    deflated = block * mib + c.flush()
    return _raw_zip("resultats.pdf", deflated, declared_size=1024 if lie else mib << 20)


def nested_zip(*, inner_name: str = "inner.zip") -> bytes:
    """A zip whose member is another zip (named `inner_name`)."""
    return make_zip([("lisez-moi.txt", b"voir l'archive"),
                     (inner_name, make_zip([("compte-rendu.pdf", make_pdf("Compte rendu"))]))])


def many_members_zip(count: int = 20_000) -> bytes:
    """A zip with `count` tiny members."""
    return make_zip([(f"f{i:05d}.txt", b"") for i in range(count)],
                    compression=zipfile.ZIP_STORED)


def truncated_zip() -> bytes:
    """A real zip cut in the middle (no central directory)."""
    whole = make_zip([("compte-rendu.pdf", make_pdf("Compte rendu de consultation"))])
    return whole[: len(whole) // 2]


def random_bytes(size: int = 4096, seed: int = 7) -> bytes:
    """Deterministic noise (e.g. to send as ``scan.pdf``)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])
