"""Code tables copied from /work/shared/domain (document-types.csv, class-codes.csv, labels.csv).

Copied so the package works without /work/shared at run time; `tests/attachments/test_labels.py`
checks the copy against the CSV files when they are present.

Facts worth knowing about the table (our own, the official CNAM mapping is not public):
- the label follows the document type, not the class: 11502-2 (biology report) is class 10 but
  BIOLOGIE; 55115-0 (imaging request) is class 42 but RADIO_SC; 96173-0 (screening certificate) is
  class 52 but DEPISTAG; 11369-6 (vaccination history) is class 11 but DEPISTAG;
- class 90 (documents added by the patient) spreads over every label via the DOCPAT codes;
- codes are LOINC (2.16.840.1.113883.6.1) or TRE_A05 (1.2.250.1.213.1.1.4.12) local codes.
"""

from __future__ import annotations

__all__ = ["CLASS_CODES", "DOCUMENT_TYPES", "LABEL_DISPLAY"]

LABEL_DISPLAY: dict[str, str] = {
    "RADIO_SC": "Radio, écho, scanner, IRM",
    "SYNTHESE": "Ma santé en résumé",
    "ORD_SOIN": "Ordonnances et soins",
    "CPT_REND": "Comptes rendus",
    "BIOLOGIE": "Résultats de biologie",
    "DEPISTAG": "Prévention et dépistage",
    "CERT_MED": "Certificats médicaux",
    "AUTR_DOC": "Autres documents",
}
"""Label code -> French display name (labels.csv)."""

CLASS_CODES: dict[str, str] = {
    "10": "Compte rendu",
    "11": "Synthèse",
    "31": "Imagerie médicale",
    "42": "Prescription",
    "43": "Dispensation",
    "44": "Plan ou protocole de soins",
    "45": "Traitement administré",
    "52": "Certificat, déclaration",
    "60": "Données de remboursement",
    "90": "Autres documents déposés par le patient",
    "95": "Document de gestion",
}
"""Class code -> French display name (class-codes.csv)."""

DOCUMENT_TYPES: dict[str, tuple[str, str, str, str]] = {
    # code: (system, display_fr, class_code, label)
    "11488-4": ("LOINC", "Compte rendu de consultation ou de visite", "10", "CPT_REND"),
    "11490-0": (
        "LOINC",
        "Lettre de liaison à la sortie d'un établissement de soins",
        "10",
        "CPT_REND",
    ),
    "34112-3": ("LOINC", "Compte rendu d'hospitalisation (séjour)", "10", "CPT_REND"),
    "15507-7": ("LOINC", "Compte rendu de passage aux urgences", "10", "CPT_REND"),
    "15508-5": ("LOINC", "Compte rendu d'accouchement", "10", "CPT_REND"),
    "34874-8": ("LOINC", "Compte rendu opératoire", "10", "CPT_REND"),
    "77436-4": ("LOINC", "Compte rendu d'anesthésie", "10", "CPT_REND"),
    "34749-2": ("LOINC", "Compte rendu de consultation pré-anesthésique", "10", "CPT_REND"),
    "34794-8": (
        "LOINC",
        "Compte rendu de réunion de concertation pluridisciplinaire",
        "10",
        "CPT_REND",
    ),
    "11526-1": ("LOINC", "Compte rendu d'anatomie et de cytologie pathologiques", "10", "CPT_REND"),
    "51969-4": ("LOINC", "Compte rendu de génétique moléculaire", "10", "CPT_REND"),
    "85208-7": ("LOINC", "Compte rendu de télémédecine", "10", "CPT_REND"),
    "78513-9": ("LOINC", "Compte rendu d'ophtalmologie", "10", "CPT_REND"),
    "47420-5": ("LOINC", "Bilan fonctionnel (auxiliaire médical)", "10", "CPT_REND"),
    "18761-7": ("LOINC", "Note de transfert (lettre de liaison à l'entrée)", "10", "CPT_REND"),
    "11502-2": ("LOINC", "Compte rendu d'examens biologiques", "10", "BIOLOGIE"),
    "18748-4": ("LOINC", "Compte rendu d'imagerie médicale", "31", "RADIO_SC"),
    "55115-0": ("LOINC", "Demande d'actes d'imagerie", "42", "RADIO_SC"),
    "52040-3": ("LOINC", "Image médicale (hors DICOM)", "31", "RADIO_SC"),
    "IMG-KOS": ("TRE_A05", "Référence d'objets d'un examen d'imagerie (KOS)", "31", "RADIO_SC"),
    "57833-6": ("LOINC", "Prescription de produits de santé", "42", "ORD_SOIN"),
    "57828-6": ("LOINC", "Prescription (autre)", "42", "ORD_SOIN"),
    "57832-8": ("LOINC", "Prescription de soins", "42", "ORD_SOIN"),
    "60593-1": ("LOINC", "Dispensation médicamenteuse", "43", "ORD_SOIN"),
    "75468-9": ("LOINC", "Renouvellement de traitement par le pharmacien", "42", "ORD_SOIN"),
    "80565-5": ("LOINC", "Administration de médicaments", "45", "ORD_SOIN"),
    "18776-5": ("LOINC", "Plan personnalisé de soins", "44", "ORD_SOIN"),
    "PRESC-BIO": ("TRE_A05", "Prescription d'actes de biologie médicale", "42", "ORD_SOIN"),
    "PRESC-KINE": ("TRE_A05", "Prescription d'actes de kinésithérapie", "42", "ORD_SOIN"),
    "PRESC-INF": ("TRE_A05", "Prescription d'actes infirmiers", "42", "ORD_SOIN"),
    "PROT_ALD": ("TRE_A05", "Protocole de soins ALD", "44", "ORD_SOIN"),
    "75492-9": ("LOINC", "Acte diagnostique à visée préventive ou de dépistage", "10", "DEPISTAG"),
    "75482-0": ("LOINC", "Acte thérapeutique à visée préventive", "10", "DEPISTAG"),
    "68817-6": ("LOINC", "Bilan de santé et de prévention de l'enfant", "10", "DEPISTAG"),
    "96173-0": ("LOINC", "Attestation de dépistage", "52", "DEPISTAG"),
    "87273-9": ("LOINC", "Note de vaccination", "10", "DEPISTAG"),
    "11369-6": ("LOINC", "Historique des vaccinations", "11", "DEPISTAG"),
    "89601-9": ("LOINC", "Certificat médical", "52", "CERT_MED"),
    "CERT_DECL": ("TRE_A05", "Certificat, déclaration", "52", "CERT_MED"),
    "60591-5": (
        "LOINC",
        "Synthèse du dossier médical (volet de synthèse médicale)",
        "11",
        "SYNTHESE",
    ),
    "34133-9": ("LOINC", "Synthèse d'épisode de soins", "11", "SYNTHESE"),
    "68599-0": ("LOINC", "Synthèse psychiatrique", "11", "SYNTHESE"),
    "SYNTH": ("TRE_A05", "Synthèse", "11", "SYNTHESE"),
    "DOCPAT01": ("TRE_A05", "Synthèse (déposé par le patient)", "90", "SYNTHESE"),
    "DOCPAT02": ("TRE_A05", "Traitement ou soins (déposé par le patient)", "90", "ORD_SOIN"),
    "DOCPAT03": ("TRE_A05", "Compte rendu (déposé par le patient)", "90", "CPT_REND"),
    "DOCPAT04": ("TRE_A05", "Imagerie (déposé par le patient)", "90", "RADIO_SC"),
    "DOCPAT05": ("TRE_A05", "Biologie (déposé par le patient)", "90", "BIOLOGIE"),
    "DOCPAT06": ("TRE_A05", "Prévention (déposé par le patient)", "90", "DEPISTAG"),
    "DOCPAT07": ("TRE_A05", "Certificat (déposé par le patient)", "90", "CERT_MED"),
    "DOCPAT08": ("TRE_A05", "Synthèse du profil médical", "90", "SYNTHESE"),
    "DOCPAT09": ("TRE_A05", "Document administratif (déposé par le patient)", "90", "AUTR_DOC"),
    "EXPPAT_1": ("TRE_A05", "Volontés et droits du patient", "90", "AUTR_DOC"),
    "EXPPAT_2": ("TRE_A05", "Autre document du patient", "90", "AUTR_DOC"),
    "EXPPAT_3": ("TRE_A05", "Directives anticipées", "90", "AUTR_DOC"),
}
"""Type code -> (system, French display, class code, label) (document-types.csv)."""
