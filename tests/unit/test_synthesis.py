"""The synthesis PDF: every entry of a full profile in its text, accents, page numbers, the
header, the fallbacks, and a golden rendering of its first page (pdftoppm, within a tolerance).

Regenerate the golden image after an intended layout change with
``MSSANTE_UPDATE_GOLDEN=1 pytest tests/unit/test_synthesis.py -k golden`` and look at it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess  # noqa: S404 - pdftoppm, a fixed local program
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from mailserver.synthesis import TITLE, build_synthesis, find_unicode_font, latest_measures
from tests.unit.profile_fixture import (
    EXPECTED_MEASURES,
    EXPECTED_TEXT,
    PATIENT,
    TODAY,
    bulk_measures,
    full_profile,
)

GOLDEN = Path(__file__).parent / "golden" / "synthesis_page1.png"
GOLDEN_DPI = 60
# A pixel "differs" when its grey level moves by more than this; the page may have this
# fraction of differing pixels (anti-aliasing drift between poppler versions; a title one
# point larger moves 0.4% of them).
PIXEL_THRESHOLD = 48
MAX_DIFFERING = 0.001


def _pages(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (table cells wrap lines anywhere)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def full_pdf() -> bytes:
    return build_synthesis(full_profile(), PATIENT, TODAY)


@pytest.fixture(scope="module")
def full_text(full_pdf: bytes) -> str:
    return " ".join(_pages(full_pdf))


needs_dejavu = pytest.mark.skipif(find_unicode_font() is None,
                                  reason="DejaVu Sans (Debian fonts-dejavu-core) not installed")


def test_every_entry_is_in_the_text(full_text: str) -> None:
    missing = [s for s in EXPECTED_TEXT + EXPECTED_MEASURES if s not in full_text]
    assert missing == []


def test_only_the_latest_value_of_each_measure(full_text: str) -> None:
    assert "70,1 kg" not in full_text and "141/91" not in full_text
    assert "2 mesures depuis le 05/01/2026" in full_text
    assert "25,7 kg/m²" in full_text  # the IMC, computed from 72.5 kg and 168 cm


def test_header_name_birth_date_grouped_ins(full_pdf: bytes) -> None:
    first = _pages(full_pdf)[0]
    assert first.startswith(f"{TITLE} Établie le 20 novembre 2026")
    assert "Hélène Françoise LEFÈVRE" in first
    assert "Née le 12 mars 1979" in first and "nom de naissance : BARBIER" in first
    assert "2 79 03 51 215 189 89" in first


@needs_dejavu
def test_accents_survive_extraction(full_text: str) -> None:
    for word in ("Synthèse de mon profil médical", "Dubœuf", "sœur", "µg", "Saint-Éloi",
                 "Âge au début", "Être soignée", "°C", "kg/m²"):
        assert word in full_text


def test_page_numbers_on_every_page(full_pdf: bytes) -> None:
    pages = _pages(full_pdf)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number}/{len(pages)}" in text


def test_professional_entries_show_who_added_them(full_text: str) -> None:
    assert "Pollen de bouleau rhinite légère Désensibilisation envisagée Dr Jérôme Martin" \
        in full_text
    assert "Pénicilline urticaire modérée vous le 15/03/2026" in full_text


def test_wishes_and_administrative_information(full_text: str) -> None:
    assert "Personne de confiance • Paul Lefèvre (époux) — Téléphone : 06 98 76 54 32" \
        in full_text
    assert "Directives anticipées • le 01/02/2024 — Je refuse tout acharnement " \
        "thérapeutique. — document déposé dans Mes documents" in full_text
    for fact in ("12 rue des Lilas, Bâtiment B, 75011 Paris", "Évreux (27)",
                 "279035121518989@patient.mssante.fr", "Médecin traitant Dr Jérôme Martin"):
        assert fact in full_text


def test_empty_profile_says_so_and_mentions_the_wishes() -> None:
    pages = _pages(build_synthesis({"rubrics": {}}, PATIENT, TODAY))
    text = " ".join(pages)
    assert "Aucune allergie connue renseignée." in text
    assert "Aucune mesure renseignée." in text
    assert "Non renseigné : aucune personne de confiance désignée." in text
    assert "Non renseigné : aucunes directives anticipées renseignées." in text
    assert f"Page 1/{len(pages)}" in pages[0]


def test_unknown_rubrics_fields_and_malformed_values_are_shown_not_refused() -> None:
    profile = {"rubrics": {
        "allergies": [{"substance": "Latex", "kind_of_test": "prick test", "extra": None},
                      "not an entry", 42],
        "mesures": [{"kind": "hémoglobine glyquée", "value": 6.1, "unit": "%",
                     "date": "pas une date"}, {"kind": "poids"}],
        "maladies": {"not": "a list"},
        "nouvelle-rubrique": [{"label": "Grossesse en cours", "since": "2026-05"}],
    }}
    text = " ".join(_pages(build_synthesis(profile, PATIENT, TODAY)))
    assert "Latex" in text and "Kind of test : prick test" in text
    assert "Hémoglobine glyquée 6,1 %" in text
    assert "Nouvelle rubrique" in text and "Label : Grossesse en cours" in text
    assert "Depuis : 05/2026" in text


def test_core_font_fallback_keeps_latin1_accents() -> None:
    text = " ".join(_pages(build_synthesis(full_profile(), PATIENT, TODAY, unicode_font=False)))
    assert "Synthèse de mon profil médical" in text and "Pénicilline" in text
    assert "Duboeuf" in text and "soeur" in text  # outside Latin-1: unaccented


def test_metadata_title_and_language(full_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(full_pdf))
    assert reader.metadata is not None
    assert reader.metadata.title == f"{TITLE} : Hélène Françoise LEFÈVRE"
    assert reader.trailer["/Root"]["/Lang"] == "fr-FR"


def test_latest_measures_one_row_per_kind_in_order() -> None:
    rows = latest_measures(bulk_measures(500))
    assert [(r.label, r.count) for r in rows] == [("Poids", 450), ("Tension artérielle", 50)]
    assert rows[0].day == date(2026, 11, 17) and rows[0].value == "60,1 kg"
    assert rows[1].day == TODAY and rows[1].value == "110/70 mmHg"


def test_five_hundred_measures_render_a_short_synthesis() -> None:
    profile = full_profile()
    profile["rubrics"]["mesures"] = bulk_measures(500)
    pages = _pages(build_synthesis(profile, PATIENT, TODAY))
    assert "450 mesures depuis le" in " ".join(pages) and len(pages) <= 4


@needs_dejavu
def test_golden_first_page(full_pdf: bytes, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian poppler-utils) is not installed")
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    chops = pytest.importorskip("PIL.ImageChops", reason="Pillow is not installed")
    source = tmp_path / "synthesis.pdf"
    source.write_bytes(full_pdf)
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", str(GOLDEN_DPI), "-gray", "-png",  # noqa: S603,S607
                    "-singlefile", str(source), str(tmp_path / "page")], check=True)
    rendered = tmp_path / "page.png"
    if os.environ.get("MSSANTE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        shutil.copyfile(rendered, GOLDEN)
    with image_mod.open(GOLDEN) as golden, image_mod.open(rendered) as page:
        assert page.size == golden.size
        diff = chops.difference(page.convert("L"), golden.convert("L"))
        histogram = diff.histogram()
        differing = sum(histogram[PIXEL_THRESHOLD + 1:]) / (page.size[0] * page.size[1])
    if differing > MAX_DIFFERING:
        kept = Path(os.environ.get("ARTIFACTS_DIR", tmp_path)) / "synthesis_page1.actual.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rendered, kept)
        pytest.fail(f"first page differs from {GOLDEN.name} on {differing:.2%} of its pixels "
                    f"(tolerance {MAX_DIFFERING:.2%}); rendering kept at {kept}")


@pytest.mark.parametrize("month,shown,admin", [
    ((1979, 3), "Née en mars 1979", "03/1979"),
    (None, "Date de naissance non renseignée", None),
], ids=["month-from-the-ins", "unknown"])
def test_birth_month_only(month: tuple[int, int] | None, shown: str, admin: str | None) -> None:
    import dataclasses

    patient = dataclasses.replace(PATIENT, birth_date=None, birth_month=month)
    text = " ".join(_pages(build_synthesis({"rubrics": {}}, patient, TODAY)))
    assert shown in text
    if admin:
        assert f"Date de naissance {admin}" in text


def test_patient_entries_read_vous_and_copies_differ() -> None:
    profile = {"rubrics": {"allergies": [
        {"id": 1, "substance": "Latex", "added_by": "patient", "added_by_kind": "patient",
         "added_at": "2026-11-01T10:00:00+00:00"}]}}
    one = build_synthesis(profile, PATIENT, TODAY, instance="ab" * 16)
    two = build_synthesis(profile, PATIENT, TODAY, instance="cd" * 16)
    assert one != two and b"/ID [<" + b"ab" * 16 in one
    text = " ".join(_pages(one))
    assert "Latex" in text and "vous le 01/11/2026" in text and "patient le" not in text
