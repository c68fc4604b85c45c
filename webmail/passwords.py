"""Password rules for patients (French messages, shown as-is in the forms).

Rules: at least :data:`MIN_LENGTH` characters and three of the four character classes
(lower, upper, digit, other) — or at least :data:`PASSPHRASE_LENGTH` characters for a
passphrase; not a common password (the bundled ``common_passwords.txt``, compared after
removing spaces, case and a trailing run of digits/symbols); not built on the identifier or
the NIR; not one repeated character.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["password_problems", "MIN_LENGTH", "PASSPHRASE_LENGTH", "common_passwords",
           "identifier_problems"]

MIN_LENGTH = 12
PASSPHRASE_LENGTH = 16
MAX_LENGTH = 256
_IDENT = re.compile(r"^[a-z0-9][a-z0-9._-]{3,39}$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords (lower-case)."""
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip() for line in path.read_text().splitlines()
                     if line.strip() and not line.startswith("#"))


def _core(password: str) -> str:
    return re.sub(r"[\W\d_]+$", "", password.lower().replace(" ", ""))


def password_problems(password: str, *, identifier: str = "", nir: str = "") -> list[str]:
    """What is wrong with ``password`` (French sentences); empty if it is acceptable."""
    problems: list[str] = []
    if len(password) > MAX_LENGTH:
        return [f"Le mot de passe ne doit pas dépasser {MAX_LENGTH} caractères."]
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z\d]"))
    if len(password) < MIN_LENGTH:
        problems.append(f"Le mot de passe doit comporter au moins {MIN_LENGTH} caractères.")
    elif len(password) < PASSPHRASE_LENGTH and classes < 3:
        problems.append("Le mot de passe doit mélanger au moins trois types de caractères "
                        "(minuscules, majuscules, chiffres, symboles), ou comporter au moins "
                        f"{PASSPHRASE_LENGTH} caractères.")
    lowered = password.lower().replace(" ", "")
    common = common_passwords()
    if lowered in common or _core(password) in common:
        problems.append("Ce mot de passe est trop courant : choisissez-en un autre.")
    if len(set(password)) <= 2:
        problems.append("Le mot de passe ne doit pas répéter un seul caractère.")
    if identifier and len(identifier) >= 4 and identifier.lower() in lowered:
        problems.append("Le mot de passe ne doit pas contenir votre identifiant.")
    if nir and nir[:13].lower() in lowered:
        problems.append("Le mot de passe ne doit pas contenir votre numéro de sécurité sociale.")
    return problems


def identifier_problems(identifier: str) -> list[str]:
    """Rules for the personal identifier (French)."""
    ident = identifier.strip().lower()
    if not _IDENT.match(ident):
        return ["L'identifiant doit comporter de 4 à 40 caractères : lettres minuscules sans "
                "accent, chiffres, point, tiret ou tiret bas, et commencer par une lettre "
                "ou un chiffre."]
    if "@" in ident:
        return ["L'identifiant ne doit pas être une adresse électronique."]
    if re.fullmatch(r"\d{13,15}", ident):
        return ["L'identifiant ne doit pas être votre numéro de sécurité sociale."]
    return []
