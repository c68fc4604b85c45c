"""The extraction reader refuses a file it cannot read with ``ValidationError`` (the command
prints it), never a raw decoding or csv traceback. Found by fuzzing (tests/fuzz)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.directory.annuaire import read_extraction
from mailserver.errors import ValidationError

HEADER = "Type de BAL|Adresse BAL|Nom d'exercice\n"


def test_rows_are_read(tmp_path: Path) -> None:
    path = tmp_path / "extraction.txt"
    path.write_text("\ufeff" + HEADER + "PER|dr.martin@hopital.mssante.fr|Martin\nPER|x\n",
                    encoding="utf-8")
    rows = list(read_extraction(path))
    assert rows == [{"Type de BAL": "PER", "Adresse BAL": "dr.martin@hopital.mssante.fr",
                     "Nom d'exercice": "Martin"}, None]


def test_latin1_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extraction.txt"
    path.write_bytes((HEADER + "PER|dr.martin@hopital.mssante.fr|Hélène\n").encode("latin-1"))
    with pytest.raises(ValidationError, match="not UTF-8"):
        list(read_extraction(path))


def test_oversized_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extraction.txt"
    path.write_text(HEADER + "PER|a@b.fr|" + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 2"):
        list(read_extraction(path))
