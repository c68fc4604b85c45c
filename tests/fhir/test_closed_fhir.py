"""``/fhir`` and a closed space, real HTTP: a consented professional searches and reads the
patient's documents (ITI-67, DocumentReference read, ITI-68) and profile resources (search,
read, create); once the space is closed every one of these is refused exactly like an unknown
patient's, and all of it is served again, unchanged, after the reactivation."""

from __future__ import annotations

from typing import Any

from attachments.labels import Label
from mailserver.app import Services
from mailserver.lifecycle import Actor
from tests.bridge.helpers import patient, pro
from tests.conftest import INS, RPPS
from tests.fhir.conftest import Fhir
from tests.fhir.test_mhd_access import STRUCTURE, _doc
from tests.fhir.test_profile_fhir import allergy, blood_pressure, post


async def _answers(fhir: Fhir, auth: dict[str, str], pid: int, doc: int,
                   observation: str, ins: str = INS[0]) -> list[tuple[int, Any]]:
    """(status, body) of each read path, in a fixed order."""
    out: list[tuple[int, Any]] = [await fhir.search(auth, ins)]
    for path in (f"/DocumentReference/{pid}-{doc}", f"/Binary/{pid}-{doc}",
                 f"/Observation/{observation}"):
        status, body, _r = await fhir.get(path, auth)
        out.append((status, body))
    status, body, _r = await fhir.get(
        "/Observation", auth, **{"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.10|{ins}"})
    out.append((status, body))
    return out


def _stable(answers: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The answers without what changes from one request to the next (ids, timestamps)."""
    def clean(body: Any) -> Any:
        if isinstance(body, dict):
            return {k: clean(v) for k, v in body.items()
                    if k not in ("id", "meta", "timestamp", "link")}
        if isinstance(body, list):
            return [clean(v) for v in body]
        return body
    return [(status, clean(body)) for status, body in answers]


async def test_fhir_refuses_a_closed_space_and_serves_it_after_reactivation(
        fhir: Fhir, services: Services) -> None:
    pt = await patient(services)
    doc = (await fhir.documents.file(pt.id, _doc(Label.BIOLOGIE), actor_account_id=None)
           ).document_id
    nurse = await pro(services, "infirmiere", "60", rpps=RPPS[1], structure_id=STRUCTURE)
    await fhir.documents.consents.grant(pt.id, "structure", STRUCTURE)
    auth = await fhir.token(nurse)
    status, bp, _r = await post(fhir, blood_pressure(), auth)
    assert status == 201, bp

    before = await _answers(fhir, auth, pt.id, doc, bp["id"])
    assert [s for s, _b in before] == [200] * 5, before
    assert before[0][1]["total"] == 1 and before[4][1]["total"] == 1
    assert before[2][1] == b"document BIOLOGIE"

    await services.closing.close(pt.id, Actor.agent("A1"))
    unknown = await _answers(fhir, auth, pt.id + 1000, doc, f"{pt.id + 1000}-1", INS[1])
    closed = await _answers(fhir, auth, pt.id, doc, bp["id"])
    assert [s for s, _b in closed] == [403] * 5, closed
    assert _stable(closed) == _stable(unknown)  # nothing tells a closed space exists
    assert (await post(fhir, allergy(), auth))[0] == 403
    status, body, _r = await fhir.get("/metadata", {})
    assert status == 200  # the server itself answers

    await services.closing.reactivate(pt.id, Actor.agent("A1"))
    after = await _answers(fhir, auth, pt.id, doc, bp["id"])
    assert _stable(after) == _stable(before)
    assert (await post(fhir, allergy(), auth))[0] == 201
