"""IHE MHD over FHIR R4 for professionals: `app` (the /fhir sub-application), `mapping`
(documents as FHIR resources), `provide` (ITI-65 filing through the bridge's checks)."""
