"""Imports every module that defines tables, so ``create_all`` creates them all.

A package adding tables (queue, documents, webmail sessions...) adds its module here.
"""

# Import order does not matter: every module registers its tables on the same Base.
from dossier_bridge import models as dossier_models  # noqa: F401
from mailserver.store import models, queue  # noqa: F401
from webmail import models as webmail_models  # noqa: F401
