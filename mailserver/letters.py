"""The announcement of a patient account, in French: the letter (PDF) and the email (pure).

Data in, bytes or text out: :func:`build_letters` makes one PDF with one page per patient
(the batch a campaign run prints and posts); :func:`announcement_email` the text of the email.
Neither carries health content. The provisional code is in the letter; the email carries it
only for a patient without a postal address (``with_code``), so that each code travels by one
channel (issue 13, README "Announcement campaign").

The PDF uses the core Helvetica font (no font file to ship), so the text is Latin-1: characters
outside it (rare in names) are replaced by their unaccented form, or ``?``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from fpdf import FPDF

__all__ = ["Letter", "build_letters", "announcement_email", "french_date", "PHONE_LINE",
           "SERVICE_NAME"]

PHONE_LINE = "3422"
SERVICE_NAME = "Ma messagerie santé"
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre")


def french_date(day: date) -> str:
    """``12 mai 2025`` (``1er`` for the first of the month)."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class Letter:
    """What one patient's letter says."""

    recipient: tuple[str, ...]
    """The address block: the name, then the postal address lines."""
    mailbox: str
    """The patient's secure address (``<INS>@patient.<domain>``)."""
    code: str
    deadline: date
    """The last day to oppose."""
    webmail_url: str
    sent_on: date


def _opening_day(deadline: date) -> date:
    return deadline + timedelta(days=1)


def _how_to(webmail_url: str, deadline: date) -> list[str]:
    return [
        f"Pour activer votre messagerie dès maintenant, ou pour vous y opposer, rendez-vous "
        f"sur {webmail_url} : munissez-vous de ce code, de votre numéro de sécurité sociale "
        f"et du numéro de série de votre carte Vitale.",
        f"Vous pouvez aussi le faire par téléphone, en appelant le {PHONE_LINE}.",
        f"Sans opposition de votre part au plus tard le {french_date(deadline)}, votre "
        f"messagerie sera ouverte automatiquement le {french_date(_opening_day(deadline))}. "
        f"Vous pourrez ensuite la fermer à tout moment, et l'activer à tout moment si vous "
        f"vous y êtes opposé(e).",
    ]


def _body(letter: Letter) -> list[str]:
    return [
        f"Une messagerie sécurisée de santé a été créée à votre nom. Les professionnels de "
        f"santé qui vous suivent pourront vous y écrire en toute confidentialité, à l'adresse "
        f"{letter.mailbox}.",
        *_how_to(letter.webmail_url, letter.deadline),
    ]


def _latin1(text: str) -> str:
    """``text`` in the core fonts' Latin-1, unaccenting what lies outside it."""
    out = []
    for ch in text.replace("’", "'").replace("œ", "oe").replace("Œ", "OE"):
        if ord(ch) < 256:
            out.append(ch)
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(plain or "?")
    return "".join(out)


def _page(pdf: FPDF, letter: Letter) -> None:
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin1(SERVICE_NAME), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, _latin1("Messagerie sécurisée de santé"), new_x="LMARGIN", new_y="NEXT")
    # The address block, where a window envelope shows it.
    pdf.set_xy(110, 45)
    pdf.set_font("Helvetica", size=11)
    for line in letter.recipient:
        pdf.set_x(110)
        pdf.cell(0, 5.5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(90)
    pdf.cell(0, 6, _latin1(f"Le {french_date(letter.sent_on)}"), new_x="LMARGIN",
             new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, _latin1("Objet : création de votre messagerie sécurisée de santé"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, _latin1("Madame, Monsieur,"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    paragraphs = _body(letter)
    pdf.multi_cell(0, 6, _latin1(paragraphs[0]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, f"Votre code provisoire : {letter.code}", align="C", border=1,
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 6, _latin1("Ce code est personnel : ne le communiquez à personne."),
             align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    for text in paragraphs[1:]:
        pdf.multi_cell(0, 6, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(2)
    pdf.multi_cell(0, 6, _latin1("Nous vous prions d'agréer, Madame, Monsieur, nos "
                                 "salutations distinguées."), new_x="LMARGIN", new_y="NEXT")


def build_letters(letters: Sequence[Letter]) -> bytes:
    """One PDF, one A4 page per letter, in the given order."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(20, 15, 20)
    pdf.set_title(_latin1(f"{SERVICE_NAME} : courriers d'annonce"))
    pdf.set_creator("mssante")
    for letter in letters:
        _page(pdf, letter)
    return bytes(pdf.output())


def announcement_email(*, name: str, mailbox: str, deadline: date, webmail_url: str,
                       code: str | None) -> tuple[str, str]:
    """The announcement email's subject and text; ``code`` only when no letter is sent."""
    if code is not None:
        code_text = [f"Votre code provisoire : {code}",
                     "Ce code est personnel : ne le communiquez à personne."]
    else:
        code_text = ["Votre code provisoire vous est envoyé par courrier postal."]
    lines = [
        f"Bonjour {name},",
        "",
        f"Une messagerie sécurisée de santé a été créée à votre nom. Les professionnels de "
        f"santé qui vous suivent pourront vous y écrire en toute confidentialité, à l'adresse "
        f"{mailbox}.",
        "",
        *code_text,
        "",
        *[p for text in _how_to(webmail_url, deadline) for p in (text, "")],
        "Ce message est envoyé automatiquement ; merci de ne pas y répondre.",
        f"{SERVICE_NAME}",
    ]
    return "Votre messagerie sécurisée de santé", "\n".join(lines) + "\n"
