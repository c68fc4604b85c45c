"""What a message filed, for the webmail (built by the composition root, which hands it to the
webmail as its ``DocumentFilings`` seam; neither package imports the other)."""

from __future__ import annotations

from dossier_bridge.store import DocumentStore

__all__ = ["DocumentFilingsView"]


class DocumentFilingsView:
    """Answers "which documents were filed from this message" (read only, no access log)."""

    def __init__(self, documents: DocumentStore) -> None:
        self.documents = documents

    async def filings_for_message(self, patient_id: int, message_id: int
                                  ) -> list[tuple[str, str]]:
        """(filename, label display name) of the documents of a message in the patient's record.

        Documents filed earlier from another message (same content) are included: they are in
        the record. Documents deleted since, or hidden from the patient, are left out. Empty
        when the message was not filed (yet).
        """
        result = await self.documents.filings.result(patient_id, message_id)
        entries = result.get("documents", [])
        labels = await self.documents.patient_labels(patient_id, [int(e[0]) for e in entries])
        return [(str(e[1]), labels[int(e[0])].display_fr) for e in entries
                if int(e[0]) in labels]
