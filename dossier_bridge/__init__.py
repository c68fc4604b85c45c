"""The dossier bridge: files documents sent by professionals into the patient's record.

- `dossier_bridge.store.DocumentStore`: the service API (file, list, read, upload, relabel,
  mask/unmask, delete own, access log, log verification); `DocumentStore.consents`
  (`dossier_bridge.consent.Consents`): consent per care team / establishment, care teams,
  treating doctor;
- `dossier_bridge.access`: the profession × label matrix and the access rules (pure);
- `dossier_bridge.audit`: the hash-chained access log;
- `dossier_bridge.filing.Filer`: message → documents → integration MDN (`Filer.handle_job` is
  the ``file_documents`` job handler in the composition root's job table);
- `dossier_bridge.filings.Filings`: the record of handled messages (``DocumentStore.filings``);
- `dossier_bridge.pharmacy.DossierPharmacies`: the send policy's pharmacy exception;
- `dossier_bridge.api.DocumentFilingsView`: what a message filed, for the webmail.

The bridge never imports the composition root (`mailserver.app`) nor the webmail: the root
builds its objects and passes each the narrow collaborators it needs.
"""
