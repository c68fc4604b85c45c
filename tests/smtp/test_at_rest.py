"""No plaintext of a message anywhere under the data directory."""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
from pathlib import Path

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import add_patient, add_pro
from tests.smtp.conftest import submission


def _files_containing(root: Path, needles: list[bytes]) -> list[tuple[Path, bytes]]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits.extend((p, n) for n in needles if n in data)
    return hits


async def test_marker_in_subject_body_attachment_name_is_never_in_clear(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext) -> None:
    doctor = await add_pro(services)
    patient = await add_patient(services)
    marker = "MK" + secrets.token_hex(8).upper()
    attachment = base64.b64encode(f"PDF {marker} content".encode() * 4000).decode()
    raw = (
        f"From: Dr Martin <{doctor.address}>\r\nTo: {patient.address}\r\n"
        f"Subject: Compte rendu {marker}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=BOUND\r\n\r\n"
        f"--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody {marker}\r\n"
        f"--BOUND\r\nContent-Type: application/pdf; name=\"cr-{marker}.pdf\"\r\n"
        f"Content-Disposition: attachment; filename=\"cr-{marker}.pdf\"\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n"
        + "\r\n".join(attachment[i:i + 76] for i in range(0, len(attachment), 76))
        + "\r\n--BOUND--\r\n"
    ).encode()
    assert len(raw) > services.config.store.inline_max  # the blob path is exercised too

    def send() -> None:
        with submission(runtime, client_tls, doctor.address) as c:
            c.sendmail(doctor.address, [patient.address], raw)
            small = raw[:400].split(b"--BOUND\r\nContent-Type: application/pdf")[0]
            c.sendmail(doctor.address, [doctor.address],
                       small.replace(patient.address.encode(), doctor.address.encode())
                       + b"\r\n--BOUND--\r\n")

    await asyncio.to_thread(send)
    folder = await services.store.get_folder(patient.id, "INBOX")
    (info,) = await services.store.list_messages(folder.id)
    stored = await services.store.read_raw(info.id)
    assert stored.endswith(raw)  # exact bytes, after our Received: trace header
    needles = [marker.encode(), base64.b64encode(f"PDF {marker}".encode())[:16],
               attachment[:40].encode()]
    data_dir = services.config.data_dir
    assert _files_containing(data_dir, needles) == []
