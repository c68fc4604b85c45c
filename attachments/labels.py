"""The 8 document labels of the patient's record and the classifier that picks one.

Theory of operation, in order of trust:

1. a known document type code (XDM typeCode, CDA code) maps through `DOCUMENT_TYPES`: confidence 1;
2. a known class code maps to its usual label (confidence 0.8); content evidence may move it to
   another label reachable from that class in the table (class 10 also covers biology and
   screening reports);
3. otherwise content: French vocabulary, accent- and case-insensitive, scored over the filename, the
   message subject and the document text (PDF text, CDA title). Generic words ("compte rendu") give
   way to specific ones ("compte rendu d'échographie" is imaging). Below `min_confidence` the
   document goes to "Autres documents" with `needs_review` set and the best guess kept.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from attachments.codes import DOCUMENT_TYPES, LABEL_DISPLAY

__all__ = ["CLASS_LABEL", "Classification", "Label", "Source", "classify", "normalise"]


class Label(enum.Enum):
    """The 8 labels (labels.csv); `display_fr` is the name patients see."""

    RADIO_SC = "RADIO_SC"
    SYNTHESE = "SYNTHESE"
    ORD_SOIN = "ORD_SOIN"
    CPT_REND = "CPT_REND"
    BIOLOGIE = "BIOLOGIE"
    DEPISTAG = "DEPISTAG"
    CERT_MED = "CERT_MED"
    AUTR_DOC = "AUTR_DOC"

    @property
    def display_fr(self) -> str:
        """French display name, exactly as in labels.csv."""
        return LABEL_DISPLAY[self.value]


class Source(enum.Enum):
    """What the classification rests on."""

    TYPE_CODE = "type_code"
    CLASS_CODE = "class_code"
    CONTENT = "content"


# Class code -> usual label (class-codes.csv read against document-types.csv; 90 is patient-added
# and spread over all labels, so it says nothing by itself).
CLASS_LABEL: dict[str, Label] = {
    "10": Label.CPT_REND,
    "11": Label.SYNTHESE,
    "31": Label.RADIO_SC,
    "42": Label.ORD_SOIN,
    "43": Label.ORD_SOIN,
    "44": Label.ORD_SOIN,
    "45": Label.ORD_SOIN,
    "52": Label.CERT_MED,
    "60": Label.AUTR_DOC,
    "95": Label.AUTR_DOC,
}

# Labels each class code reaches in the type table (for content refinement of a class-only entry).
_CLASS_REACH: dict[str, frozenset[Label]] = {}
for _system, _display, _class, _label in DOCUMENT_TYPES.values():
    _CLASS_REACH[_class] = _CLASS_REACH.get(_class, frozenset()) | {Label(_label)}


@dataclass(frozen=True, slots=True)
class Classification:
    """A label choice with its confidence (0..1) and what it rests on."""

    label: Label
    confidence: float
    needs_review: bool
    source: Source
    reason: str
    """Short English explanation (codes and matched words; no document text)."""
    guess: Label | None = None
    """Best content guess when it was too weak to be used (label is then AUTR_DOC)."""


# (pattern on normalised text, weight, generic). Generic patterns only count when no other label
# has a specific hit in the same source.
_V = tuple[str, float, bool]
_VOCABULARY: dict[Label, tuple[_V, ...]] = {
    Label.RADIO_SC: (
        (r"radiographies?|radiologi\w*|radios?", 3, False),
        (r"echographi\w*|echos?|doppler", 3, False),
        (r"scanners?|tomodensitometri\w*|tdm", 3, False),
        (r"irm|imagerie", 3, False),
        (r"mammographie|scintigraphie|tep scan|pet scan|osteodensitometrie", 3, False),
        (r"cliches?|incidences?|produit de contraste", 1, False),
    ),
    Label.BIOLOGIE: (
        (r"biologi\w*|bilan sanguin|prise de sang|examens? biologiques?", 3, False),
        (r"resultats? d analyses?|analyses? (?:medicales|biologiques|de sang)", 3, False),
        (r"laboratoire|serologie|hemogramme|nfs|ecbu|uroculture", 2, False),
        (r"hemoglobine|glycemie|creatinine|cholesterol|leucocytes|plaquettes", 2, False),
        (r"ferritine|tsh|triglycerides|transaminases|hba1c|valeurs? de reference", 2, False),
    ),
    Label.ORD_SOIN: (
        (r"ordonnances?|prescriptions?", 3, False),
        (r"posologie|qsp|a renouveler|renouvellement|dispensation", 2, False),
        (r"protocole de soins|plan de soins|soins infirmiers|seances? de kinesitherapie", 3, False),
        (r"comprimes?|gelules?|\d+ fois par jour|sachets?", 1, False),
    ),
    Label.CPT_REND: (
        (r"comptes? rendus?|cr", 3, True),
        (r"lettre de liaison|compte rendu operatoire|hospitalisation|sejour", 3, False),
        (r"consultation|operatoire|cher confrere|chere consoeur|courrier", 1, True),
    ),
    Label.DEPISTAG: (
        (r"vaccin\w*|depistage|prevention", 3, False),
        (r"bilan de sante|examen de sante|mammographie de depistage|depistage organise", 4, False),
        (r"frottis|hpv|rappel|carnet de sante", 1, False),
    ),
    Label.CERT_MED: (
        (r"certificats?|arret de travail|non contre indication", 3, False),
        (r"certifie|atteste|aptitude|apte", 2, False),
    ),
    Label.SYNTHESE: (
        (r"synthese|vsm|volet de synthese medicale|profil medical", 3, False),
        (r"antecedents|dossier medical|resume", 1, False),
    ),
    Label.AUTR_DOC: (
        (r"factures?|devis|attestation de droits|administratif|convocation", 3, False),
        (r"mutuelle|carte vitale|rendez vous", 2, False),
    ),
}
_COMPILED = {
    label: tuple((re.compile(rf"\b(?:{p})\b"), w, g) for p, w, g in entries)
    for label, entries in _VOCABULARY.items()
}
# Source multipliers: the subject describes the whole message, not one attachment.
_FILENAME, _SUBJECT, _TEXT = 1.0, 0.8, 1.0
_STRENGTH = 4.0  # score at which evidence counts as strong


def normalise(text: str) -> str:
    """Lower case, accents removed (NFKD), non-alphanumerics as single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def _score_source(text: str, factor: float, scores: dict[Label, float], hits: list[str]) -> None:
    norm = normalise(text)
    if not norm:
        return
    specific: dict[Label, float] = {}
    generic: dict[Label, float] = {}
    for label, patterns in _COMPILED.items():
        for pattern, weight, is_generic in patterns:
            m = pattern.search(norm)
            if m is None:
                continue
            bucket = generic if is_generic else specific
            bucket[label] = bucket.get(label, 0.0) + weight * factor
            hits.append(m.group(0))
    has_specific = any(label is not Label.AUTR_DOC for label in specific)
    for label, value in specific.items():
        scores[label] = scores.get(label, 0.0) + value
    if not has_specific:
        for label, value in generic.items():
            scores[label] = scores.get(label, 0.0) + value


def _content(
    text: str, filename: str, subject: str, allowed: frozenset[Label] | None
) -> tuple[Label | None, float, list[str]]:
    scores: dict[Label, float] = {}
    hits: list[str] = []
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    _score_source(stem, _FILENAME, scores, hits)
    _score_source(subject, _SUBJECT, scores, hits)
    _score_source(text, _TEXT, scores, hits)
    if allowed is not None:
        scores = {k: v for k, v in scores.items() if k in allowed}
    if not scores:
        return None, 0.0, hits
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    top_label, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = (top / (top + second)) * min(1.0, top / _STRENGTH)
    return top_label, round(confidence, 2), hits


def classify(
    *,
    type_code: str | None = None,
    class_code: str | None = None,
    text: str = "",
    filename: str = "",
    subject: str = "",
    min_confidence: float = 0.5,
) -> Classification:
    """Choose a label for one document.

    Args:
        type_code: XDM typeCode or CDA code@code (LOINC or TRE_A05), if any.
        class_code: XDM classCode, if any.
        text: document text (PDF text, CDA title...), already bounded by the caller.
        filename: attachment filename.
        subject: message subject.
        min_confidence: content classifications below this go to AUTR_DOC with `needs_review`.

    Returns:
        The `Classification`. Never raises.
    """
    if type_code and type_code.strip() in DOCUMENT_TYPES:
        code = type_code.strip()
        _system, display, _class, label = DOCUMENT_TYPES[code]
        return Classification(
            Label(label), 1.0, False, Source.TYPE_CODE, f"type code {code} ({display})"
        )
    klass = (class_code or "").strip()
    if klass in CLASS_LABEL:
        usual = CLASS_LABEL[klass]
        guess, confidence, hits = _content(text, filename, subject, _CLASS_REACH.get(klass))
        if guess is not None and guess is not usual and confidence >= min_confidence:
            return Classification(
                guess,
                0.8,
                False,
                Source.CLASS_CODE,
                f"class code {klass}, refined by content ({', '.join(sorted(set(hits)))})",
            )
        return Classification(usual, 0.8, False, Source.CLASS_CODE, f"class code {klass}")
    guess, confidence, hits = _content(text, filename, subject, None)
    matched = ", ".join(sorted(set(hits))) or "no vocabulary matched"
    if guess is None or confidence < min_confidence:
        return Classification(
            Label.AUTR_DOC,
            confidence,
            True,
            Source.CONTENT,
            f"low confidence content ({matched})",
            guess=guess,
        )
    return Classification(guess, confidence, False, Source.CONTENT, f"content ({matched})")
