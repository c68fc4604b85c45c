"""Imports every module that defines tables, so ``create_all`` creates them all.

A package adding tables (queue, documents, webmail sessions...) adds its module here.
"""

from mailserver.store import models  # noqa: F401
from webmail import models as webmail_models  # noqa: F401
from mailserver.store import queue  # noqa: F401,E402
from dossier_bridge import models as dossier_models  # noqa: F401
