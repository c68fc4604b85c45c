"""The 9 rubrics of the medical profile ("Profil médical") and the validation of an entry
(pure: no I/O, the day is passed in).

Each rubric is a row of :data:`RUBRICS`: its slug (``/api/profile/<slug>``, the webmail's
URLs), its French title, its fields (snake_case names, the JSON keys of an entry) and its
cross-field rules. Two rubrics hold several kinds of entries, told apart by ``kind``:
"Entourage et volontés" (volontés et droits, don d'organes, directives anticipées, personne de
confiance, proche) and "Mesures" (one variant per measure kind of
:mod:`mailserver.profile.measures`).

:func:`validate` turns raw input (JSON or an HTML form) into the entry's stored fields, or
raises :class:`~mailserver.profile.fields.EntryInvalid` with one French message per field.
Codes: conditions may carry a CIM-10 code (``cim10``), medicines and vaccines a code
(``code``: CIS, CIP or ATC); no code list is required, the free label always works.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailserver.profile.fields import EntryInvalid, Field, display, parse_field
from mailserver.profile.fields import FieldKind as K
from mailserver.profile.measures import MEASURE_KINDS, MEASURES, describe_measure, normalise_measure

__all__ = ["Rubric", "Variant", "Rule", "RUBRICS", "RUBRIC_SLUGS", "RESERVED", "rubric",
           "validate", "headline", "details", "sort_key"]

Rule = Callable[[dict[str, Any]], dict[str, str]]
"""A cross-field rule: reads the parsed values (and may normalise them in place), returns
French errors by field name."""

RESERVED = frozenset({"id", "added_by", "added_by_kind", "added_at", "updated_at", "rubric"})
"""Keys an API client may send back with an entry; never fields, ignored on input."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One kind of entry of a rubric with several kinds (its ``kind`` value)."""

    kind: str
    label: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    entered: bool = True
    refusal: str = ""
    """Why it cannot be entered (computed kinds)."""


@dataclass(frozen=True, slots=True)
class Rubric:
    slug: str
    title: str
    add_label: str
    """The add button's text ("Ajouter une allergie")."""
    intro: str
    fields: tuple[Field, ...] = ()
    variants: tuple[Variant, ...] = ()
    rules: tuple[Rule, ...] = ()
    date_field: str = ""
    """Entries are listed newest first by this field (then by id)."""

    def variant(self, kind: object) -> Variant | None:
        return next((v for v in self.variants if v.kind == kind), None)

    def fields_for(self, kind: object = None) -> tuple[Field, ...]:
        """The fields of an entry (of ``kind`` in a rubric with variants)."""
        v = self.variant(kind)
        return self.fields + (v.fields if v else ())

    def rules_for(self, kind: object = None) -> tuple[Rule, ...]:
        v = self.variant(kind)
        return self.rules + (v.rules if v else ())

    def field(self, name: str, kind: object = None) -> Field | None:
        return next((f for f in self.fields_for(kind) if f.name == name), None)


# -- rules -------------------------------------------------------------------------------------

def _one_of(first: str, second: str, message: str) -> Rule:
    def rule(values: dict[str, Any]) -> dict[str, str]:
        return {} if values.get(first) or values.get(second) else {first: message}
    return rule


def _ordered(start: str, end: str, message: str) -> Rule:
    def rule(values: dict[str, Any]) -> dict[str, str]:
        a, b = values.get(start), values.get(end)
        return {end: message} if a and b and b < a else {}
    return rule


# -- fields shared by several rubrics ----------------------------------------------------------

MEDICINE_CODE = r"\d{7}|\d{8}|\d{13}|[A-Z]\d{2}(?:[A-Z]{1,2}(?:\d{2})?)?"
MEDICINE_CODE_TEXT = "Le code d'un médicament ou d'un vaccin est son code CIS (8 chiffres), " \
                     "CIP (7 ou 13 chiffres) ou ATC (par exemple J07BB02)."
CIM10 = r"[A-Z]\d{2}(?:\.?\d{1,2})?"
CIM10_TEXT = "Un code CIM-10 est une lettre suivie de deux chiffres, parfois d'un point et " \
             "d'un ou deux chiffres (par exemple E11 ou E11.9)."


def _notes(label: str = "Remarques") -> Field:
    return Field("notes", label, K.LONG_TEXT)


def _cim10() -> Field:
    return Field("cim10", "Code CIM-10", K.CODE, pattern=CIM10, pattern_text=CIM10_TEXT,
                 hint="facultatif, par exemple E11")


def _medicine_code() -> Field:
    return Field("code", "Code du médicament", K.CODE, pattern=MEDICINE_CODE,
                 pattern_text=MEDICINE_CODE_TEXT, hint="facultatif : code CIS, CIP ou ATC")


def _person(label: str) -> tuple[Field, ...]:
    return (Field("name", label, required=True),
            Field("relationship", "Lien avec vous", hint="par exemple : fille, voisin"),
            Field("phone", "Téléphone", K.PHONE), Field("email", "Adresse e-mail", K.EMAIL),
            Field("address", "Adresse postale"))


# -- measures as variants ----------------------------------------------------------------------

def _normalise(values: dict[str, Any]) -> dict[str, str]:
    return normalise_measure(values)


def _measure_variant(slug: str) -> Variant:
    m = MEASURE_KINDS[slug]
    day = Field("date", "Date de la mesure", K.DATE, required=True)
    unit = Field("unit", "Unité", hint=" ou ".join(m.accepted_units()))
    if m.pair:
        values: tuple[Field, ...] = (
            Field("systolic", "Pression systolique (le premier chiffre)", K.INTEGER,
                  required=True, unit=m.unit),
            Field("diastolic", "Pression diastolique (le second chiffre)", K.INTEGER,
                  required=True, unit=m.unit))
    else:
        values = (Field("value", m.label, K.INTEGER if m.integer else K.DECIMAL,
                        required=True, unit=m.unit),)
    return Variant(m.slug, m.label, (day,) + values + (unit, _notes("Remarque")),
                   rules=(_normalise,), entered=m.entered,
                   refusal="L'IMC est calculé à partir de votre dernier poids et de votre "
                           "dernière taille : il ne se saisit pas." if not m.entered else "")


# -- the table ---------------------------------------------------------------------------------

RUBRICS: tuple[Rubric, ...] = (
    Rubric("maladies", "Maladies et sujets de santé", "Ajouter une maladie ou un sujet de santé",
           "Vos maladies, actuelles ou passées, et les sujets de santé à connaître.",
           fields=(Field("condition", "Maladie ou sujet de santé", required=True),
                   Field("since", "Depuis le", K.DATE),
                   Field("status", "État", K.CHOICE, required=True,
                         choices=(("active", "En cours"), ("resolved", "Guéri ou terminé"))),
                   _cim10(), _notes()),
           date_field="since"),
    Rubric("historique-soins", "Historique de soins", "Ajouter un soin",
           "Vos consultations, examens et soins.",
           fields=(Field("date", "Date", K.DATE, required=True),
                   Field("kind", "Type de soin", K.CHOICE, required=True, choices=(
                       ("consultation", "Consultation"),
                       ("teleconsultation", "Téléconsultation"),
                       ("examen", "Examen (radio, échographie…)"),
                       ("analyse", "Analyse de biologie"),
                       ("soins", "Soins (infirmiers, kinésithérapie…)"),
                       ("urgences", "Passage aux urgences"),
                       ("autre", "Autre"))),
                   Field("professional", "Professionnel ou établissement"), _notes()),
           date_field="date"),
    Rubric("entourage-volontes", "Entourage et volontés", "Ajouter",
           "Vos volontés, votre position sur le don d'organes, vos directives anticipées, "
           "votre personne de confiance et vos proches à prévenir.",
           variants=(
               Variant("volontes", "Volontés et droits",
                       (Field("text", "Vos volontés", K.LONG_TEXT, required=True),)),
               Variant("don-organes", "Don d'organes",
                       (Field("position", "Votre position", K.CHOICE, required=True, choices=(
                           ("favorable", "Favorable au don d'organes"),
                           ("opposé", "Opposé(e) au don d'organes"))),
                        Field("date", "Date de votre décision", K.DATE, required=True),
                        _notes())),
               Variant("directives-anticipees", "Directives anticipées",
                       (Field("text", "Vos directives", K.LONG_TEXT),
                        Field("document_id", "Document de votre espace Documents",
                              K.DOCUMENT),
                        Field("date", "Rédigées le", K.DATE)),
                       rules=(_one_of("text", "document_id",
                                      "Écrivez vos directives ou choisissez un document de "
                                      "votre espace Documents."),)),
               Variant("personne-confiance", "Personne de confiance",
                       _person("Nom de votre personne de confiance")),
               Variant("proche", "Proche à prévenir", _person("Nom du proche")),
           )),
    Rubric("allergies", "Allergies", "Ajouter une allergie",
           "Vos allergies et intolérances (médicaments, aliments, autres).",
           fields=(Field("substance", "Substance", required=True,
                         hint="par exemple : pénicilline, arachide"),
                   Field("reaction", "Réaction", hint="par exemple : urticaire"),
                   Field("severity", "Gravité", K.CHOICE, choices=(
                       ("légère", "Légère"), ("modérée", "Modérée"), ("sévère", "Sévère"))),
                   _notes())),
    Rubric("traitements", "Traitements", "Ajouter un traitement",
           "Les médicaments que vous prenez ou avez pris.",
           fields=(Field("medicine", "Médicament", required=True),
                   Field("dose", "Dose", hint="par exemple : 1 comprimé de 500 mg"),
                   Field("frequency", "Fréquence", hint="par exemple : 2 fois par jour"),
                   Field("start", "Début", K.DATE),
                   Field("end", "Fin", K.DATE, future=True,
                         hint="laisser vide si le traitement continue"),
                   Field("prescriber", "Prescrit par"), _medicine_code()),
           rules=(_ordered("start", "end", "La fin ne peut pas être avant le début."),),
           date_field="start"),
    Rubric("vaccinations", "Vaccinations", "Ajouter une vaccination",
           "Vos vaccins et leurs rappels.",
           fields=(Field("vaccine", "Vaccin", required=True),
                   Field("date", "Date", K.DATE, required=True),
                   Field("dose_number", "Numéro de la dose", K.INTEGER, low=1, high=20,
                         hint="1 pour la première injection, 2 pour le rappel…"),
                   Field("lot", "Numéro de lot"), _medicine_code()),
           date_field="date"),
    Rubric("hospitalisations", "Hospitalisations et chirurgies",
           "Ajouter une hospitalisation ou une chirurgie",
           "Vos séjours à l'hôpital et vos opérations.",
           fields=(Field("date", "Date", K.DATE, required=True),
                   Field("establishment", "Établissement"),
                   Field("reason", "Motif"),
                   Field("procedure", "Intervention ou opération"), _notes()),
           rules=(_one_of("reason", "procedure", "Indiquez le motif ou l'intervention."),),
           date_field="date"),
    Rubric("mesures", "Mesures", "Ajouter une mesure",
           "Votre poids, votre taille, votre tension et vos autres mesures.",
           variants=tuple(_measure_variant(m.slug) for m in MEASURES),
           date_field="date"),
    Rubric("antecedents-familiaux", "Antécédents familiaux", "Ajouter un antécédent familial",
           "Les maladies de votre famille proche qui peuvent compter pour votre santé.",
           fields=(Field("relative", "Membre de la famille", K.CHOICE, required=True, choices=(
                       ("mere", "Mère"), ("pere", "Père"), ("soeur", "Sœur"),
                       ("frere", "Frère"), ("fille", "Fille"), ("fils", "Fils"),
                       ("grand-mere-maternelle", "Grand-mère maternelle"),
                       ("grand-pere-maternel", "Grand-père maternel"),
                       ("grand-mere-paternelle", "Grand-mère paternelle"),
                       ("grand-pere-paternel", "Grand-père paternel"),
                       ("tante", "Tante"), ("oncle", "Oncle"), ("autre", "Autre"))),
                   Field("condition", "Maladie", required=True), _cim10(),
                   Field("age_at_onset", "Âge au début de la maladie", K.INTEGER, low=0,
                         high=120, unit="ans"),
                   _notes())),
)
RUBRIC_SLUGS: tuple[str, ...] = tuple(r.slug for r in RUBRICS)
_BY_SLUG = {r.slug: r for r in RUBRICS}


def rubric(slug: str) -> Rubric | None:
    """The rubric of ``slug``, or None."""
    return _BY_SLUG.get(slug)


def _kind_error(r: Rubric, kind: object) -> str:
    v = r.variant(kind)
    if v is not None and not v.entered:
        return v.refusal
    if v is None:
        names = ", ".join(x.kind for x in r.variants if x.entered)
        return f"Choisissez un type parmi : {names}."
    return ""


def validate(r: Rubric, raw: Mapping[str, object], today: date) -> dict[str, Any]:
    """The stored fields of an entry of ``r`` from ``raw``, checked against today's date.

    Keys of :data:`RESERVED` are ignored; any other unknown key is an error (a misspelt field
    must not be dropped silently). Returns only the fields given (``kind`` first in rubrics
    with variants), normalised (dates ISO, numbers as numbers, measures in their unit).

    Raises:
        EntryInvalid: one French message per field in error.
    """
    kind: object = None
    if r.variants:
        kind = raw.get("kind")
        if error := _kind_error(r, kind):
            raise EntryInvalid({"kind": error}, {"kind": "Type"})
    fields = r.fields_for(kind)
    labels = {f.name: f.label for f in fields}
    known = set(labels) | RESERVED | ({"kind"} if r.variants else set())
    errors = {k: "Ce champ n'existe pas dans cette rubrique." for k in raw if k not in known}
    values: dict[str, Any] = {"kind": kind} if r.variants else {}
    for f in fields:
        parsed = parse_field(f, raw.get(f.name), today)
        if parsed.error:
            errors[f.name] = parsed.error
        elif parsed.value is not None:
            values[f.name] = parsed.value
    if not errors:
        for rule in r.rules_for(kind):
            errors.update(rule(values))
    if errors:
        raise EntryInvalid(errors, labels)
    return values


def headline(r: Rubric, data: Mapping[str, Any]) -> str:
    """The entry's one-line title in French ("Pénicilline", "Poids : 72,5 kg")."""
    if r.slug == "mesures":
        return describe_measure(data)
    if r.variants:
        v = r.variant(data.get("kind"))
        if v is None:
            return ""
        if data.get("name"):
            return f"{v.label} : {data['name']}"
        position = r.field("position", v.kind)
        if position is not None and data.get("position"):
            return f"{v.label} : {position.choice_label(data['position'])}"
        return v.label
    first = r.fields[0]
    if r.slug == "historique-soins":
        kind = r.field("kind")
        assert kind is not None
        return kind.choice_label(data.get("kind", ""))
    if r.slug == "antecedents-familiaux":
        return f"{first.choice_label(data.get('relative', ''))} : {data.get('condition', '')}"
    if r.slug == "hospitalisations":
        return str(data.get("reason") or data.get("procedure") or "")
    return display(first, data.get(first.name))


def details(r: Rubric, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value as shown) of every field the entry has, in field order."""
    out = []
    for f in r.fields_for(data.get("kind")):
        if f.name == "unit":
            continue  # shown with the value
        shown = display(f, data.get(f.name))
        if f.name == "value" and shown and data.get("unit"):
            shown = display(Field(f.name, f.label, f.kind, unit=str(data["unit"])),
                            data.get(f.name))
        if shown:
            out.append((f.label, shown))
    return out


def sort_key(r: Rubric, data: Mapping[str, Any], entry_id: int) -> tuple[str, int]:
    """Newest first when sorted in reverse: (the rubric's date, the entry's id)."""
    return (str(data.get(r.date_field, "")) if r.date_field else "", entry_id)
