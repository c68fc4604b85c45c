"""The export's ZIP writer (streamed: every byte handed back as written) and its naming rules,
as tables."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest

from mailserver.export.layout import Names, conversation_folder, document_file, slug
from mailserver.export.zipstream import ZipStream, compressible

WHEN = datetime(2024, 5, 1, 22, 30, tzinfo=UTC)  # 2 May in Paris


@pytest.mark.parametrize(("text", "expected"), [
    ("Résultats d'analyse (mai)", "resultats-d-analyse-mai"),
    ("", "sans-objet"),
    ("¿¿??", "sans-objet"),
    ("Ordonnance n°12 / Dr Œdipe", "ordonnance-n12-dr-oedipe"),
], ids=["accents", "empty", "symbols", "ligature"])
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_names_are_unique_and_dated_in_paris() -> None:
    names = Names()
    assert [names.unique(n) for n in ("documents/a.pdf", "documents/A.pdf", "documents/a.pdf",
                                      "messages/x")] == [
        "documents/a.pdf", "documents/A-2.pdf", "documents/a-3.pdf", "messages/x"]
    assert conversation_folder(WHEN, "Bilan") == "messages/2024-05-02-bilan"
    assert document_file("Compte rendu é.PDF", "t") == "documents/compte-rendu-e.pdf"
    assert document_file("", "Mon titre") == "documents/mon-titre"


def test_zip_stream_is_valid_and_incremental() -> None:
    z = ZipStream()
    out = [z.add("a.txt", b"bonjour " * 1000, WHEN, compress=True)]
    out.append(z.begin("b.pdf", 3 * 100_000, WHEN, compress=compressible("application/pdf")))
    for _ in range(3):
        piece = z.write(b"%" * 100_000)
        assert len(piece) >= 100_000  # stored bytes come back at once, not at the end
        out.append(piece)
    out.append(z.end())
    out.append(z.close())
    zf = zipfile.ZipFile(io.BytesIO(b"".join(out)))
    assert zf.testzip() is None
    assert zf.getinfo("a.txt").compress_type == zipfile.ZIP_DEFLATED
    assert zf.getinfo("b.pdf").compress_type == zipfile.ZIP_STORED
    assert zf.getinfo("b.pdf").flag_bits & 0x08  # sizes in a data descriptor: streamed
    assert zf.getinfo("a.txt").date_time == (2024, 5, 1, 22, 30, 0)
