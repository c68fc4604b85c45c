"""The patient's data export: the archive's assembly (:mod:`.archive`), its layout and French
texts (:mod:`.layout`, pure), the streaming ZIP writer (:mod:`.zipstream`) and the message
reader over the mail store (:mod:`.messages`)."""
