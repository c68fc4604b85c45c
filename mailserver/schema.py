"""Every module that defines tables, so the models' metadata holds them all.

This lives above the store (the store imports no protocol or web package): the migrations
(``mailserver.migrations``) compare this metadata with the database, and a new revision is
generated from it. A package adding tables adds its module here (then a revision: see
docs/ARCHITECTURE.md, "Schema migrations").
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

from dossier_bridge import models as dossier_models
from dossier_bridge import profile_models
from mailserver.store import (
    archives,
    attempts,
    audit,
    lifecycle,
    models,
    prepared_exports,
    queue,
    sent,
    vanished,
)
from webmail import models as webmail_models

__all__ = ["metadata", "TABLE_MODULES"]

TABLE_MODULES: tuple[ModuleType, ...] = (models, attempts, queue, sent, lifecycle, archives,
                                         prepared_exports, audit, vanished,
                                         dossier_models, profile_models, webmail_models)
"""Every module defining tables (each registers its tables on the shared ``Base``)."""


def metadata() -> MetaData:
    """The shared declarative ``Base``'s metadata, with the tables of every module listed in
    :data:`TABLE_MODULES` (imported above)."""
    return models.Base.metadata
