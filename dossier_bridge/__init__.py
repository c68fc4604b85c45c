"""The dossier bridge: files documents sent by professionals into the patient's record.

- `dossier_bridge.store.DocumentStore`: the service API (file, list, read, upload, relabel,
  mask/unmask, delete own, access log, log verification); `DocumentStore.consents`
  (`dossier_bridge.consent.Consents`): consent per care team / establishment, care teams,
  treating doctor;
- `dossier_bridge.access`: the profession × label matrix and the access rules (pure);
- `dossier_bridge.audit`: the hash-chained access log;
- `dossier_bridge.filing.Filer`: message → documents → integration MDN (run by the
  ``file_documents`` job registered in `dossier_bridge.jobs`);
- `dossier_bridge.pharmacy.DossierPharmacies`: the send policy's pharmacy exception;
- `dossier_bridge.api.filings_for_message`: what a message filed, for the webmail.

Submodules are imported on demand (this package must not pull in the server at import time).
"""
