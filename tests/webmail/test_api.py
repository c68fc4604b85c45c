"""The JSON API: same journeys, same authorisation, bearer tokens."""

from __future__ import annotations

import base64

from tests.conftest import INS
from tests.webmail.conftest import CONTACT, LOGIN, NIR, PATIENT_PASSWORD, VITALE, World


async def _api_login(w: World) -> dict[str, str]:
    r = await w.client.post("/api/login", json={"identifier": LOGIN,
                                                "password": PATIENT_PASSWORD})
    assert r.status == 200, await r.text()
    token = (await r.json())["token"]
    r = await w.client.post("/api/otp", json={"code": w.last_code()},
                            headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["token"] != token  # rotated
    return {"Authorization": f"Bearer {data['token']}"}


async def test_api_first_connection_and_login(world: World) -> None:
    w = world
    r = await w.client.post("/api/first-connection", json={"code": w.code, "nir": NIR,
                                                           "vitale": VITALE})
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["contact"]["email"] == "ancienne@perso.example"
    r = await w.client.post("/api/first-connection/credentials", json={
        "identifier": LOGIN, "password": "motdepasse", "email": CONTACT},
        headers={"Authorization": f"Bearer {data['token']}"})
    assert r.status == 400 and (await r.json())["details"]
    r = await w.client.post("/api/first-connection/credentials", json={
        "identifier": LOGIN, "password": PATIENT_PASSWORD, "email": CONTACT},
        headers={"Authorization": f"Bearer {data['token']}"})
    assert r.status == 200, await r.text()
    headers = await _api_login(w)
    r = await w.client.get("/api/conversations", headers=headers)
    assert r.status == 200 and (await r.json())["conversations"] == []


async def test_api_requires_authentication(world: World) -> None:
    for path in ("/api/conversations", "/api/conversations/1", "/api/pharmacies",
                 "/api/session"):
        r = await world.client.get(path)
        assert r.status == 401
        r = await world.client.get(path, headers={"Authorization": "Bearer invente"})
        assert r.status == 401
    r = await world.client.post("/api/login", json={"identifier": "x", "password": "y"})
    assert r.status == 401


async def test_api_otp_token_is_not_a_session(world: World) -> None:
    await world.first_connection()
    r = await world.client.post("/api/login", json={"identifier": LOGIN,
                                                    "password": PATIENT_PASSWORD})
    token = (await r.json())["token"]
    r = await world.client.get("/api/conversations",
                               headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401


async def test_api_read_reply_and_attachment(world: World) -> None:
    w = world
    await w.first_connection()
    headers = await _api_login(w)
    await w.pro_writes("Examen", "Voir pièce jointe",
                       attachments=[("cr.pdf", "application/pdf", b"%PDF-1.4 x")])
    r = await w.client.get("/api/conversations", headers=headers)
    convs = (await r.json())["conversations"]
    assert convs[0]["unread"] == 1 and convs[0]["correspondent"] == "Dr Claire Martin"
    cid = convs[0]["id"]
    r = await w.client.get(f"/api/conversations/{cid}", headers=headers)
    data = await r.json()
    assert data["can_reply"] and not data["closed"]
    att = data["messages"][0]["attachments"][0]
    assert att["filename"] == "cr.pdf" and att["filed_in"] is None
    r = await w.client.get(att["url"], headers=headers)
    assert await r.read() == b"%PDF-1.4 x"
    r = await w.client.post(f"/api/conversations/{cid}/reply", headers=headers, json={
        "body": "Merci", "attachments": [{"filename": "photo.jpg", "content_type":
                                          "image/jpeg",
                                          "data": base64.b64encode(b"\xff\xd8jpeg").decode()}]})
    assert r.status == 201, await r.text()
    assert (await r.json())["recipients"] == [w.pro.address]


async def test_api_policy_refusal_and_cross_patient(world: World) -> None:
    w = world
    await w.first_connection()
    headers = await _api_login(w)
    await w.pro_writes("Clos", "fin", headers={"X-MSS-MES": "FIN"})
    cid = (await w.conversation_ids())[0]
    r = await w.client.post(f"/api/conversations/{cid}/reply", headers=headers,
                            json={"body": "question"})
    assert r.status == 403
    assert "clos" in (await r.json())["error"]
    r = await w.client.post("/api/messages", headers=headers,
                            json={"to": w.pro.address, "subject": "x", "body": "y"})
    assert r.status == 403
    other, _ = await w.services.directory.add_patient(ins=INS[1], name="Jean Durand")
    assert other.id != w.patient.id
    r = await w.client.get(f"/api/conversations/{cid + 1000}", headers=headers)
    assert r.status == 404


async def test_api_cookie_session_needs_csrf_header(world: World) -> None:
    w = world
    await w.first_connection()
    await w.login()  # browser-style cookie session
    await w.pro_writes("Question", "?")
    cid = (await w.conversation_ids())[0]
    r = await w.client.post(f"/api/conversations/{cid}/reply", json={"body": "oui"})
    assert r.status == 403
    csrf = (await (await w.client.get("/api/session")).json())["csrf"]
    r = await w.client.post(f"/api/conversations/{cid}/reply", json={"body": "oui"},
                            headers={"X-CSRF-Token": csrf})
    assert r.status == 201
