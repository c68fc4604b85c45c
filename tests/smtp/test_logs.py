"""No secret or health data in logs, even at DEBUG."""

from __future__ import annotations

import asyncio
import logging
import ssl

import pytest

from mailserver.app import Services
from mailserver.runtime import Runtime
from tests.conftest import PASSWORD, add_patient, add_pro
from tests.smtp.conftest import message, submission


async def test_logs_carry_no_content_password_or_ins(runtime: Runtime, services: Services,
                                                     client_tls: ssl.SSLContext,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    doctor = await add_pro(services)
    patient = await add_patient(services)
    caplog.set_level(logging.DEBUG)
    marker = "LOGMARKER7731"

    def run() -> None:
        with submission(runtime, client_tls, doctor.address) as c:
            c.sendmail(doctor.address, [patient.address, f"ghost{patient.ins}@x.invalid"],
                       message(doctor.address, patient.address, subject=f"Bilan {marker}",
                               body=f"Résultats {marker}"))
        with submission(runtime, client_tls) as c:
            try:
                c.login(doctor.address, "wrong-" + PASSWORD)
            except Exception:  # noqa: BLE001,S110 - a refused login is the point
                pass

    await asyncio.to_thread(run)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "nothing was logged at all"
    assert marker not in text
    assert PASSWORD not in text
    assert patient.ins is not None and patient.ins not in text
