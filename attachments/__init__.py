"""Attachment analysis for the dossier bridge: bytes in, structured documents out.

Pure functions, no I/O, no database, no asyncio (a leaf package: stdlib, defusedxml, pypdf).

- `extract(raw, limits)` walks a MIME message (attachments.mime);
- `read_xdm(zip_bytes, limits)` reads an IHE XDM archive (attachments.xdm, attachments.ebrim);
- `parse_cda(xml_bytes, limits)` reads a CDA R2 header (attachments.cda);
- `classify(...)` picks one of the 8 labels (attachments.labels);
- `analyse(raw)` / `analyse_message(raw, limits)` combine them (attachments.analyse).

Bad or hostile input never raises: results carry a `Refusal` (`Reason` + text).
"""

from attachments.analyse import (
    Analysis,
    Document,
    DocumentSource,
    analyse,
    analyse_attachment,
    analyse_message,
)
from attachments.cda import CdaHeader, parse_cda
from attachments.ebrim import DocumentEntry
from attachments.labels import Classification, Label, Source, classify
from attachments.limits import Limits, Reason, Refusal
from attachments.mime import Extraction, MessageFacts, Part, extract
from attachments.model import Author, Code, PatientId
from attachments.xdm import XdmDocument, XdmResult, read_xdm

__all__ = [
    "Analysis",
    "Author",
    "CdaHeader",
    "Classification",
    "Code",
    "Document",
    "DocumentEntry",
    "DocumentSource",
    "Extraction",
    "Label",
    "Limits",
    "MessageFacts",
    "Part",
    "PatientId",
    "Reason",
    "Refusal",
    "Source",
    "XdmDocument",
    "XdmResult",
    "analyse",
    "analyse_attachment",
    "analyse_message",
    "classify",
    "extract",
    "parse_cda",
    "read_xdm",
]
