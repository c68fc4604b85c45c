"""What the export archive holds and how its files are named (pure: no I/O).

Names are ASCII (every unzip tool reads them the same way): a conversation's folder is the
day of its first message and a slug of its subject; its messages are numbered in date order.
Documents keep their file name, made unique. The indexes and the access log are written for
a spreadsheet (CSV with ``;`` and a UTF-8 BOM, as French spreadsheets expect) and for programs
(JSON); the README is French, in CRLF lines (Windows' Notepad).
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["PARIS", "slug", "Names", "local", "conversation_folder", "message_name",
           "document_file", "IndexRow",
           "index_csv", "index_json", "AccessLine", "access_csv", "readme", "archive_name",
           "OTHER_FOLDER"]

PARIS = ZoneInfo("Europe/Paris")
OTHER_FOLDER = "messages/autres"
"""Messages in no conversation (sent before conversations existed, system notices)."""


_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
"""Letters NFKD does not decompose into ASCII."""


def slug(text: str, *, limit: int = 50, empty: str = "sans-objet") -> str:
    """``"Résultats d'analyse (mai)"`` → ``"resultats-d-analyse-mai"``."""
    spelled = text.translate(_LIGATURES)
    ascii_text = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return out[:limit].rstrip("-") or empty


class Names:
    """Unique names within the archive: a second ``x.pdf`` becomes ``x-2.pdf``."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def unique(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if not dot or "/" in ext:
            stem, dot, ext = name, "", ""
        candidate, n = name, 1
        while candidate.lower() in self._taken:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        self._taken.add(candidate.lower())
        return candidate


def local(when: datetime) -> datetime:
    return when.astimezone(PARIS)


def conversation_folder(first: datetime, subject: str | None) -> str:
    return f"messages/{local(first):%Y-%m-%d}-{slug(subject or '')}"


def message_name(n: int, when: datetime) -> str:
    return f"{n:03d}-{local(when):%Y-%m-%d}.eml"


def document_file(filename: str, title: str) -> str:
    """A document's name in ``documents/``: its file name, made safe (ASCII)."""
    stem, dot, ext = (filename or "").rpartition(".")
    if not dot:
        stem, ext = filename or title, ""
    safe_ext = slug(ext, limit=10, empty="")
    return f"documents/{slug(stem or title, limit=80, empty='document')}" \
           + (f".{safe_ext}" if safe_ext else "")


@dataclass(frozen=True)
class IndexRow:
    """One document in ``documents/index.csv`` and ``index.json``."""

    file: str
    title: str
    label: str
    label_fr: str
    date: datetime
    author: str
    content_type: str
    size: int
    sha256: str
    masked: bool


_INDEX_HEADER = ("fichier", "titre", "rubrique", "code_rubrique", "date", "auteur", "type",
                 "taille_octets", "sha256", "masque")


def _index_values(r: IndexRow) -> tuple[str, ...]:
    return (r.file.removeprefix("documents/"), r.title, r.label_fr, r.label,
            local(r.date).date().isoformat(), r.author or "Vous", r.content_type, str(r.size),
            r.sha256, "oui" if r.masked else "non")


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def index_csv(rows: Sequence[IndexRow]) -> bytes:
    return _csv(_INDEX_HEADER, (_index_values(r) for r in rows))


def index_json(rows: Sequence[IndexRow]) -> bytes:
    items = [{"fichier": r.file.removeprefix("documents/"), "titre": r.title,
              "rubrique": r.label_fr, "code_rubrique": r.label,
              "date": local(r.date).date().isoformat(), "auteur": r.author or "Vous",
              "type": r.content_type, "taille_octets": r.size, "sha256": r.sha256,
              "masque": r.masked} for r in rows]
    return json.dumps({"documents": items}, ensure_ascii=False, indent=2).encode()


@dataclass(frozen=True)
class AccessLine:
    """One entry of the access log as the patient reads it."""

    at: datetime
    action: str
    who: str
    profession: str
    structure: str
    document: str


def access_csv(lines: Sequence[AccessLine]) -> bytes:
    return _csv(("date", "action", "qui", "profession", "structure", "document"),
                ((local(a.at).isoformat(timespec="seconds"), a.action, a.who, a.profession,
                  a.structure, a.document) for a in lines))


def archive_name(now: datetime) -> str:
    return f"mon-espace-sante-export-{local(now):%Y-%m-%d}.zip"


def readme(now: datetime, counts: Mapping[str, int], *, log_intact: bool,
           fhir: bool) -> bytes:
    """``LISEZMOI.txt``: what each file is, the date, how to open them."""
    when = local(now)
    lines = [
        "Mon espace santé – export de mes données",
        "=========================================",
        "",
        f"Export réalisé le {when:%d/%m/%Y} à {when:%H:%M} (heure de Paris).",
        "",
        "Contenu",
        "-------",
        f"messages/ : vos {counts.get('messages', 0)} messages, un dossier par conversation "
        "(date du premier message et objet), numérotés dans l'ordre. Les messages hors "
        "conversation sont dans messages/autres/.",
        f"documents/ : vos {counts.get('documents', 0)} documents de santé, tels qu'ils ont "
        "été déposés.",
        "documents/index.csv et documents/index.json : la liste des documents (titre, "
        "rubrique, date, auteur, type, taille, empreinte SHA-256, masqué ou non).",
        "profil/profil.json : votre profil médical (toutes les rubriques).",
    ]
    if fhir:
        lines.append("profil/bundle-fhir.json : le même profil et vos documents au format "
                     "FHIR R4 (norme d'échange de données de santé), pour un autre service.")
    lines += [
        "journal-des-acces.csv : qui a consulté, ajouté, masqué ou supprimé vos documents."
        + ("" if log_intact else " ATTENTION : la vérification de cet historique a échoué "
           "(il a été modifié) ; contactez le service."),
        "",
        "Comment ouvrir ces fichiers",
        "---------------------------",
        "Les fichiers .eml sont des courriels complets (avec leurs pièces jointes). Ouvrez-les "
        "par un double-clic : ils s'affichent dans votre logiciel de messagerie (Outlook, "
        "Thunderbird, Courrier de Windows, Mail sur Mac). Un éditeur de texte les montre "
        "aussi, sous forme brute.",
        "Les fichiers .csv s'ouvrent dans un tableur (LibreOffice Calc, Excel) ; les fichiers "
        ".json dans un éditeur de texte ou un navigateur.",
        "L'empreinte SHA-256 de chaque document permet de vérifier qu'il n'a pas été modifié.",
        "",
        "Ces fichiers contiennent des données de santé : conservez-les en lieu sûr et ne les "
        "transmettez qu'à des personnes de confiance.",
        "",
    ]
    return "\r\n".join(lines).encode()
