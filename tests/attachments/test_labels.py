"""The 8 labels: tables copied from the domain CSVs, code-based and content-based classification."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attachments import Label, Source, classify
from attachments.codes import CLASS_CODES, DOCUMENT_TYPES, LABEL_DISPLAY
from attachments.labels import CLASS_LABEL, normalise

DOMAIN = Path("/work/shared/domain")
needs_domain = pytest.mark.skipif(not DOMAIN.is_dir(), reason="domain CSVs not present")


def _csv(name: str) -> list[dict[str, str]]:
    with (DOMAIN / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@needs_domain
def test_label_table_matches_csv() -> None:
    rows = _csv("labels.csv")
    assert {r["label"]: r["display_fr"] for r in rows} == LABEL_DISPLAY
    assert [label.value for label in Label] == [r["label"] for r in rows]
    assert {label.display_fr for label in Label} == {r["display_fr"] for r in rows}


@needs_domain
def test_document_types_match_csv() -> None:
    expected = {
        r["code"]: (r["system"], r["display_fr"], r["class_code"], r["label"])
        for r in _csv("document-types.csv")
    }
    assert expected == DOCUMENT_TYPES


@needs_domain
def test_class_codes_match_csv() -> None:
    assert {r["class_code"]: r["display_fr"] for r in _csv("class-codes.csv")} == CLASS_CODES


def test_display_names_are_the_french_ones() -> None:
    assert Label.RADIO_SC.display_fr == "Radio, écho, scanner, IRM"
    assert Label.AUTR_DOC.display_fr == "Autres documents"
    assert Label.SYNTHESE.display_fr == "Ma santé en résumé"


@pytest.mark.parametrize(
    ("code", "label"),
    sorted((code, row[3]) for code, row in DOCUMENT_TYPES.items()),
    ids=lambda v: str(v),
)
def test_every_type_code_maps_to_its_label(code: str, label: str) -> None:
    result = classify(type_code=code, class_code="90", filename="rien.pdf")
    assert result.label is Label(label)
    assert (result.confidence, result.needs_review, result.source) == (1.0, False, Source.TYPE_CODE)
    assert code in result.reason


def test_type_table_reaches_every_label() -> None:
    assert {row[3] for row in DOCUMENT_TYPES.values()} == {label.value for label in Label}


@pytest.mark.parametrize(
    ("class_code", "label"), sorted(CLASS_LABEL.items()), ids=lambda v: str(getattr(v, "name", v))
)
def test_class_code_alone(class_code: str, label: Label) -> None:
    result = classify(type_code="UNKNOWN-1", class_code=class_code)
    assert (result.label, result.source, result.confidence) == (label, Source.CLASS_CODE, 0.8)


def test_class_code_refined_by_content_within_class() -> None:
    # Class 10 covers biology reports (11502-2) too: content may move it there...
    result = classify(class_code="10", text="Résultats de biologie: hémoglobine, glycémie")
    assert result.label is Label.BIOLOGIE and result.source is Source.CLASS_CODE
    # ...but not to a label class 10 never reaches.
    result = classify(class_code="10", text="Ordonnance: posologie 2 comprimés")
    assert result.label is Label.CPT_REND


def test_class_90_says_nothing_by_itself() -> None:
    result = classify(class_code="90", filename="scan.jpg")
    assert result.source is Source.CONTENT
    assert result.label is Label.AUTR_DOC and result.needs_review


@pytest.mark.parametrize(
    ("filename", "subject", "text", "label"),
    [
        ("ordonnance_dupont.pdf", "", "", Label.ORD_SOIN),
        (
            "scan.pdf",
            "",
            "ORDONNANCE\nDoliprane 1000 mg, 3 fois par jour, QSP 5 jours",
            Label.ORD_SOIN,
        ),
        ("CR_consultation.pdf", "", "", Label.CPT_REND),
        ("doc.pdf", "", "Compte-rendu d'hospitalisation du 12/01", Label.CPT_REND),
        (
            "resultats.pdf",
            "",
            "Bilan sanguin: Hémoglobine 13,2 g/dL; Créatinine 80",
            Label.BIOLOGIE,
        ),
        ("BIOLOGIE.PDF", "", "", Label.BIOLOGIE),
        ("cr_echographie_abdominale.pdf", "", "", Label.RADIO_SC),
        (
            "doc.pdf",
            "",
            "Compte rendu de radiographie du thorax, incidences face et profil",
            Label.RADIO_SC,
        ),
        ("img.png", "Votre IRM du genou", "", Label.RADIO_SC),
        ("scanner.jpg", "", "", Label.RADIO_SC),
        ("doc.pdf", "", "Certificat de vaccination: rappel DTP effectué", Label.DEPISTAG),
        ("depistage_colorectal.pdf", "", "", Label.DEPISTAG),
        (
            "doc.pdf",
            "",
            "Je soussigné certifie que l'état de santé ... non contre-indication au sport",
            Label.CERT_MED,
        ),
        ("certificat-medical.pdf", "", "", Label.CERT_MED),
        ("VSM.pdf", "", "", Label.SYNTHESE),
        ("doc.pdf", "", "Volet de synthèse médicale — antécédents, allergies", Label.SYNTHESE),
        ("facture.pdf", "", "", Label.AUTR_DOC),
    ],
    ids=[
        "ordonnance-filename",
        "ordonnance-text",
        "cr-filename",
        "cr-text",
        "biologie-text",
        "biologie-filename-upper",
        "echo-beats-generic-cr",
        "radio-text",
        "irm-subject",
        "scanner-filename",
        "vaccination",
        "depistage",
        "certificat-text",
        "certificat-filename",
        "vsm",
        "synthese-text",
        "facture",
    ],
)
def test_content_vocabulary(filename: str, subject: str, text: str, label: Label) -> None:
    result = classify(text=text, filename=filename, subject=subject)
    assert result.label is label, result
    assert result.source is Source.CONTENT
    assert not result.needs_review
    assert 0.5 <= result.confidence <= 1.0


@pytest.mark.parametrize(
    ("filename", "subject", "text"),
    [
        ("IMG_2034.jpg", "", ""),
        ("document.pdf", "Bonjour", "Lorem ipsum dolor sit amet"),
        ("doc.pdf", "", "ordonnance et certificat et scanner et biologie"),
    ],
    ids=["nothing", "no-vocabulary", "ambiguous"],
)
def test_low_confidence_goes_to_autres_for_review(filename: str, subject: str, text: str) -> None:
    result = classify(text=text, filename=filename, subject=subject)
    assert result.label is Label.AUTR_DOC
    assert result.needs_review
    assert result.confidence < 0.5


def test_ambiguous_keeps_best_guess() -> None:
    result = classify(text="ordonnance, scanner")
    assert result.needs_review and result.guess in (Label.ORD_SOIN, Label.RADIO_SC)


def test_normalise_is_accent_and_case_insensitive() -> None:
    assert normalise("ÉCHOGRAPHIE Rénale — Compte-Rendu") == "echographie renale compte rendu"
    assert classify(filename="ECHOGRAPHIE.pdf").label is classify(filename="échographie.pdf").label
