"""Structured logs and the admin listener, on a real ``mssante serve`` process."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from pathlib import Path

from mailserver.app import open_services
from mailserver.config import load
from tests.conftest import DOMAIN, INS, PASSWORD, RPPS
from tests.ops.server import http_get, sample, serve
from tests.smtp.conftest import message

MARKER = "OPSMARKER5521"


async def _accounts(data_dir: Path) -> tuple[str, str]:
    services = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        doctor = await services.directory.add_professional(
            rpps=RPPS[0], email=f"dr.martin@{DOMAIN}", name="Dr Martin", profession="10",
            password=PASSWORD)
        patient, _ = await services.directory.add_patient(ins=INS[0], name="Marie Dupont",
                                                          status="open")
        return doctor.address, patient.address
    finally:
        await services.close()


def _submit(port: int, ca: Path, doctor: str, patient: str) -> None:
    tls = ssl.create_default_context(cafile=str(ca))
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        try:
            c.login(doctor, "wrong-" + PASSWORD)
        except smtplib.SMTPAuthenticationError:
            pass
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        c.login(doctor, PASSWORD)
        c.sendmail(doctor, [patient], message(doctor, patient, subject=f"Bilan {MARKER}",
                                              body=f"Résultats {MARKER}"))
        try:
            c.sendmail(doctor, [f"nobody@{DOMAIN}"], message(doctor, f"nobody@{DOMAIN}"))
        except smtplib.SMTPRecipientsRefused:
            pass


async def test_json_logs_and_metrics_of_a_running_server(data_dir: Path) -> None:
    toml = data_dir / "mssante.toml"
    toml.write_text(toml.read_text().replace("[logging]\n", '[logging]\nformat = "json"\n'))
    doctor, patient = await _accounts(data_dir)
    server = await serve(data_dir, "submission", "http", "metrics")
    try:
        assert server.ports["metrics"] != server.ports["http"]
        _, before = await asyncio.to_thread(http_get, server.url("/metrics"))
        await asyncio.to_thread(_submit, server.ports["submission"][1],
                                data_dir / "tls" / "ca.pem", doctor, patient)
        for _ in range(100):  # the filer's job runs after the 250
            status, text = await asyncio.to_thread(http_get, server.url("/metrics"))
            if sample(text, "mssante_filing_messages_total", status="no_documents",
                      error_code="") > sample(before, "mssante_filing_messages_total",
                                              status="no_documents", error_code=""):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the filing of the message to the patient was not counted")
        assert status == 200
        assert await asyncio.to_thread(http_get, server.url("/healthz")) == (200, "ok\n")
        assert await asyncio.to_thread(http_get, server.url("/readyz")) == (200, "ready\n")
        host, port = server.ports["http"]
        webmail = await asyncio.to_thread(http_get, f"http://{host}:{port}/metrics")
        assert webmail[0] == 404, "metrics must not be served on the patients' port"
        await asyncio.to_thread(http_get, f"http://{host}:{port}/connexion")
        _, after = await asyncio.to_thread(http_get, server.url("/metrics"))
    finally:
        stderr = await server.stop()

    def moved(name: str, **labels: str) -> float:
        return sample(text, name, **labels) - sample(before, name, **labels)

    assert moved("mssante_smtp_messages_accepted_total", role="submission") == 1
    assert moved("mssante_smtp_refusals_total", role="submission", stage="rcpt",
                 reason="UNKNOWN_RECIPIENT") == 1
    assert moved("mssante_auth_failures_total", result="invalid") >= 1  # smtplib: PLAIN, LOGIN
    assert moved("mssante_smtp_accept_seconds_count", role="submission") == 1
    assert sample(text, "mssante_store_commit_batch_ops_count") >= 1
    assert sample(text, "mssante_queue_messages") == 0
    assert sample(after, "mssante_http_request_seconds_count", route="/connexion",
                  method="GET", status="2xx") == 1
    assert "mssante_webmail_sessions" in text

    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records
    for r in records:
        assert {"time", "level", "logger", "event", "message"} <= r.keys()
        assert r["time"].endswith("Z") and "T" in r["time"]
    assert any(r.get("conn_id") for r in records), "connection ids are logged"
    assert any(r["event"] == "auth: failure" for r in records)
    assert MARKER not in stderr and PASSWORD not in stderr
    assert INS[0] not in stderr and patient not in stderr
