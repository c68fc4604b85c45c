"""The synthesis of a patient's medical profile ("Synthèse de mon profil médical"): PDF (pure).

Data in, bytes out: :func:`build_synthesis` takes the profile as ``GET /api/profile`` returns it
(``{"rubrics": {"<slug>": [entries]}}``, see :mod:`mailserver.profile_text`) and the patient's
identity, and lays out an A4 document in French: a header (name, birth date, INS grouped as on
the carte Vitale), then one section per rubric (tables with who added each entry), the latest
value of each measure, the patient's entourage and wishes (personne de confiance, directives
anticipées always mentioned, even when absent), the administrative information, and
``Page n/N`` on every page. The text is real text (searchable, read by screen readers and by
pypdf), in DejaVu Sans so that every French character renders; without that font (Debian
``fonts-dejavu-core``) it falls back to the core Helvetica font in Latin-1 (characters outside
it are unaccented). The only I/O is reading the font file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from fpdf import FPDF, FontFace

from mailserver.identifiers import grouped_ins
from mailserver.profile_text import (
    RUBRICS,
    french_date,
    latin1,
    short_date,
)
from mailserver.synthesis_rows import (
    NOTES_WIDTH,
    RUBRIC_TABLES,
    SOURCE_WIDTH,
    WISHES,
    LatestMeasure,
    Rubric,
    entries_of,
    latest_measures,
    notes_text,
    sorted_entries,
    source_text,
    wish_group,
    wish_line,
)

__all__ = ["PatientHeader", "build_synthesis", "find_unicode_font", "latest_measures", "TITLE",
           "FONT_DIRS"]

TITLE = "Synthèse de mon profil médical"
FONT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu (fonts-dejavu-core)
    Path("/usr/share/fonts/dejavu"),  # Fedora, Alpine
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts"),
)
_REGULAR, _BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"

_INK = (33, 37, 41)
_MUTED = (90, 98, 108)
_ACCENT = (0, 84, 147)
_BAND = (226, 236, 246)
_HEADINGS = (232, 238, 245)
_ZEBRA = (246, 248, 251)


@dataclass(frozen=True)
class PatientHeader:
    """Who the synthesis is about: the identity the account holds (not the profile's rubrics)."""

    given_names: str
    family_name: str
    """The name in use (``nom d'usage``), else the birth name."""
    birth_date: date | None
    """None when the account does not hold it (then ``birth_month`` if known)."""
    ins: str
    birth_name: str | None = None
    sex: str | None = None
    """``F`` or ``M`` (agrees ``Né``/``Née``); None when unknown."""
    birth_place: str | None = None
    address: tuple[str, ...] = ()
    phone: str | None = None
    email: str | None = None
    secure_address: str | None = None
    """The patient's secure messaging address."""
    treating_doctor: str | None = None
    """The médecin traitant's display name."""
    birth_month: tuple[int, int] | None = None
    """(year, month) of birth when only those are known (read from the INS)."""


# --- Layout ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def find_unicode_font(dirs: tuple[Path, ...] = FONT_DIRS) -> tuple[Path, Path] | None:
    """DejaVu Sans regular and bold, from the first of ``dirs`` holding both; None if absent."""
    for folder in dirs:
        regular, bold = folder / _REGULAR, folder / _BOLD
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


class _Document(FPDF):
    """A4 pages with the running header (from page 2) and the ``Page n/N`` footer."""

    def __init__(self, patient: PatientHeader, today: date, unicode_font: bool) -> None:
        super().__init__(format="A4")
        self.patient = patient
        self.today = today
        fonts = find_unicode_font() if unicode_font else None
        if fonts is not None:
            self.add_font("DejaVu", "", str(fonts[0]))
            self.add_font("DejaVu", "B", str(fonts[1]))
            self.face = "DejaVu"
        else:
            self.face = "Helvetica"
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)
        self.alias_nb_pages()
        self.instance: str | None = None

    def file_id(self) -> str | Literal[-1]:
        # The trailer's /ID: this copy's own when given (two filings are two documents).
        return f"<{self.instance}><{self.instance}>" if self.instance else -1

    def normalize_text(self, txt: str) -> str:
        # The core font speaks Latin-1 only: unaccent what lies outside it, never fail.
        return super().normalize_text(txt if self.is_ttf_font else latin1(txt))

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(self.face, size=8)
        self.set_text_color(*_MUTED)
        self.cell(0, 5, f"{TITLE} · {_full_name(self.patient)} · {_born(self.patient)}",
                  new_x="LMARGIN", new_y="NEXT")
        self.ln(2)
        self.set_text_color(*_INK)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.face, size=8)
        self.set_text_color(*_MUTED)
        self.cell(self.epw - 25, 5, f"Établie le {short_date(self.today)} à partir du profil "
                  f"médical. Ne remplace pas l'avis d'un professionnel de santé.")
        self.cell(25, 5, f"Page {self.page_no()}/{self.str_alias_nb_pages}", align="R")
        self.set_text_color(*_INK)


def _full_name(patient: PatientHeader) -> str:
    return f"{patient.given_names.strip()} {patient.family_name.strip().upper()}".strip()


def _born(patient: PatientHeader) -> str:
    agreed = {"F": "Née", "M": "Né"}.get((patient.sex or "").upper()[:1], "Né(e)")
    if patient.birth_date is not None:
        return f"{agreed} le {french_date(patient.birth_date)}"
    if patient.birth_month is not None:
        year, month = patient.birth_month
        return f"{agreed} en {french_date(date(year, month, 1)).split(' ', 1)[1]}"
    return "Date de naissance non renseignée"


def _birth_day(patient: PatientHeader) -> str:
    if patient.birth_date is not None:
        return short_date(patient.birth_date)
    if patient.birth_month is not None:
        return f"{patient.birth_month[1]:02d}/{patient.birth_month[0]}"
    return ""


def _title_block(pdf: _Document) -> None:
    patient = pdf.patient
    pdf.set_font(pdf.face, "B", 17)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(0, 9, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.face, size=9.5)
    pdf.set_text_color(*_MUTED)
    pdf.cell(0, 5, f"Établie le {french_date(pdf.today)}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    top = pdf.get_y()
    pdf.set_fill_color(*_BAND)
    pdf.rect(pdf.l_margin, top, pdf.epw, 21, style="F")
    pdf.set_fill_color(255, 255, 255)
    pdf.set_xy(pdf.l_margin + 4, top + 2.5)
    pdf.set_text_color(*_INK)
    pdf.set_font(pdf.face, "B", 13)
    pdf.cell(0, 7, _full_name(patient), new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(pdf.l_margin + 4)
    pdf.set_font(pdf.face, size=10)
    born = _born(patient)
    if patient.birth_name and patient.birth_name.strip().upper() != patient.family_name.upper():
        born = f"{born} · nom de naissance : {patient.birth_name.strip().upper()}"
    pdf.cell(0, 5, born, new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(pdf.l_margin + 4)
    pdf.cell(0, 5, f"INS (numéro de sécurité sociale) : {grouped_ins(patient.ins)}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(top + 25)


def _section(pdf: _Document, title: str) -> None:
    if pdf.will_page_break(22):
        pdf.add_page()
    pdf.start_section(title)
    pdf.set_font(pdf.face, "B", 12)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(0.4)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(2)
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(190, 198, 206)
    pdf.set_line_width(0.2)


def _paragraph(pdf: _Document, body: str, *, muted: bool = False) -> None:
    pdf.set_font(pdf.face, size=9.5)
    pdf.set_text_color(*(_MUTED if muted else _INK))
    pdf.multi_cell(0, 5, body, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_INK)


def _table(pdf: _Document, headings: Sequence[str], widths: Sequence[float],
           rows: Iterable[Sequence[str]]) -> None:
    pdf.set_font(pdf.face, size=8.5)
    style = FontFace(emphasis="BOLD", fill_color=_HEADINGS, color=_INK)
    with pdf.table(col_widths=tuple(widths), headings_style=style, line_height=4.2,
                   text_align="LEFT", v_align="TOP", padding=1.2, cell_fill_mode="ROWS",
                   cell_fill_color=_ZEBRA, borders_layout="HORIZONTAL_LINES") as table:
        table.row(list(headings))
        for values in rows:
            table.row(list(values))
    pdf.ln(3)


def _rubric(pdf: _Document, rubric: Rubric, entries: list[Mapping[str, Any]]) -> None:
    _section(pdf, rubric.title)
    if not entries:
        _paragraph(pdf, rubric.empty, muted=True)
        pdf.ln(2)
        return
    shown = {k for c in rubric.columns for k in c.keys}
    headings = [c.heading for c in rubric.columns] + ["Précisions", "Ajouté par"]
    widths = [c.width for c in rubric.columns] + [NOTES_WIDTH, SOURCE_WIDTH]
    rows = ([c.render(e) for c in rubric.columns] + [notes_text(e, shown), source_text(e)]
            for e in sorted_entries(entries, rubric.newest_first))
    _table(pdf, headings, widths, rows)


def _measures(pdf: _Document, entries: list[Mapping[str, Any]]) -> None:
    _section(pdf, "Dernières mesures")
    rows = latest_measures(entries)
    if not rows:
        _paragraph(pdf, "Aucune mesure renseignée.", muted=True)
        pdf.ln(2)
        return
    def history(row: LatestMeasure) -> str:
        if row.count <= 1:
            return "1 mesure" if row.first_day else ""
        since = f" depuis le {short_date(row.first_day)}" if row.first_day else ""
        return f"{row.count} mesures{since}"
    _table(pdf, ["Mesure", "Dernière valeur", "Date", "Historique", "Ajouté par"],
           [30, 20, 13, 24, 27],
           ([r.label, r.value, short_date(r.day) if r.day else "", history(r), r.source]
            for r in rows))


def _wishes(pdf: _Document, entries: list[Mapping[str, Any]]) -> None:
    _section(pdf, "Entourage et volontés")
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(wish_group(entry), []).append(wish_line(entry))
    absent = {"personne_de_confiance": "aucune personne de confiance désignée.",
              "directives_anticipees": "aucunes directives anticipées renseignées."}
    for group, label, _ in (*WISHES, ("autres", "Autres informations", ())):
        lines = groups.get(group, [])
        if not lines and group not in absent:
            continue
        if pdf.will_page_break(12):  # never a heading alone at the foot of a page
            pdf.add_page()
        pdf.set_font(pdf.face, "B", 9.5)
        pdf.cell(0, 5.5, label, new_x="LMARGIN", new_y="NEXT")
        if not lines:
            _paragraph(pdf, f"Non renseigné : {absent[group]}", muted=True)
        for line in lines:
            _paragraph(pdf, f"• {line}")
        pdf.ln(1.5)
    pdf.ln(1.5)


def _administrative(pdf: _Document) -> None:
    patient = pdf.patient
    _section(pdf, "Informations administratives")
    rows = [
        ("Nom", patient.family_name.strip().upper()),
        ("Nom de naissance", (patient.birth_name or "").strip().upper()),
        ("Prénom(s)", patient.given_names.strip()),
        ("Date de naissance", _birth_day(patient)),
        ("Sexe", {"F": "féminin", "M": "masculin"}.get((patient.sex or "").upper()[:1], "")),
        ("Lieu de naissance", patient.birth_place or ""),
        ("INS (numéro de sécurité sociale)", grouped_ins(patient.ins)),
        ("Adresse", ", ".join(line.strip() for line in patient.address if line.strip())),
        ("Téléphone", patient.phone or ""),
        ("Courriel", patient.email or ""),
        ("Messagerie sécurisée de santé", patient.secure_address or ""),
        ("Médecin traitant", patient.treating_doctor or ""),
    ]
    pdf.set_font(pdf.face, size=9)
    with pdf.table(col_widths=(35, 65), first_row_as_headings=False, line_height=4.6,
                   text_align="LEFT", padding=1.2, cell_fill_mode="ROWS",
                   cell_fill_color=_ZEBRA, borders_layout="HORIZONTAL_LINES") as table:
        for label, value in rows:
            if value:
                row = table.row()
                row.cell(label, style=FontFace(emphasis="BOLD"))
                row.cell(value)


def build_synthesis(profile: Mapping[str, Any], patient: PatientHeader, today: date, *,
                    unicode_font: bool = True, instance: str | None = None) -> bytes:
    """The synthesis PDF of ``profile`` (the ``GET /api/profile`` JSON, or its ``rubrics``).

    Args:
        profile: ``{"rubrics": {"<slug>": [entries]}}``; unknown rubrics and fields are shown
            as they come (no entry is left out), missing ones read as empty.
        patient: the identity printed in the header and the administrative section.
        today: the date the synthesis is established (printed; no clock is read here).
        unicode_font: use DejaVu Sans when installed (False forces the core-font fallback).
        instance: 32 hex digits naming this copy (the PDF's /ID): the same profile filed
            twice the same day makes two distinct documents. None: derived from the content.
    Returns:
        The PDF bytes.
    """
    raw = profile.get("rubrics", profile)
    rubrics: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    pdf = _Document(patient, today, unicode_font)
    pdf.instance = instance
    pdf.set_title(f"{TITLE} : {_full_name(patient)}")
    pdf.set_subject(f"{TITLE}, établie le {french_date(today)}")
    pdf.set_author(_full_name(patient))
    pdf.set_creator("mssante")
    pdf.set_lang("fr-FR")
    # The metadata date is the synthesis' date, not the clock: same input, same bytes.
    pdf.set_creation_date(datetime(today.year, today.month, today.day, 12, tzinfo=UTC))
    pdf.add_page()
    _title_block(pdf)
    tables = {r.slug: r for r in RUBRIC_TABLES}
    for slug in ("maladies", "traitements", "allergies", "vaccinations"):
        _rubric(pdf, tables[slug], entries_of(rubrics, slug))
    _measures(pdf, entries_of(rubrics, "mesures"))
    for slug in ("hospitalisations", "historique-soins", "antecedents-familiaux"):
        _rubric(pdf, tables[slug], entries_of(rubrics, slug))
    _wishes(pdf, entries_of(rubrics, "entourage-volontes"))
    known = {slug for slug, _ in RUBRICS}
    for slug in sorted(k for k in rubrics if k not in known):
        entries = entries_of(rubrics, slug)
        if entries:
            _rubric(pdf, Rubric(slug, slug.replace("-", " ").capitalize(), (), ""), entries)
    _administrative(pdf)
    return bytes(pdf.output())
