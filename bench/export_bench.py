"""Export benchmark: the peak memory growth and the time of a patient's data export.

Seeds a patient space (SQLite, throwaway data dir unless ``--data-dir``) with ``--messages``
messages delivered by a professional (in conversations of 20; every 10th carries a ~300 KB
PDF) and ``--documents-mb`` of documents (~2 MB PDFs with incompressible padding), then
builds the export archive (``mailserver.export``, as ``GET /api/export`` streams it) into a
sink that only counts the bytes, and prints the archive size, the time and the growth of the
process' peak RSS during the export (Linux: VmHWM reset through ``/proc/self/clear_refs``).

    .venv/bin/python -m bench.export_bench --messages 1000 --documents-mb 200
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import gc
import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attachments.labels import Label  # noqa: E402
from dossier_bridge.store import NewDocument  # noqa: E402
from mailserver.app import Services, open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from mailserver.directory.service import AccountInfo  # noqa: E402
from mailserver.runtime import account_export  # noqa: E402
from tests.attachments.corpus import make_pdf  # noqa: E402

DOMAIN = "hopital.mssante.test"
INS = "279035121518989"


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pdf(n: int, size: int) -> bytes:
    base = make_pdf(f"Compte rendu numero {n}")
    return base + b"\n%" + os.urandom(max(0, size - len(base)))


def _message(pro: AccountInfo, patient: AccountInfo, n: int, refs: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Dr Martin <{pro.address}>"
    msg["To"] = patient.address
    msg["Subject"] = f"Suivi numéro {n // 20}" if not refs else f"Re: suivi {n // 20}"
    msg["Message-ID"] = f"<export{n}.{time.time_ns()}@{DOMAIN}>"
    msg["Date"] = email.utils.formatdate()
    if refs:
        msg["In-Reply-To"] = msg["References"] = refs
    msg.set_content(("Bonjour, voici le compte rendu de la consultation. " * 40 + "\n") * 10)
    if n % 10 == 0:
        msg.add_attachment(_pdf(n, 300 * 1024), maintype="application", subtype="pdf",
                           filename=f"cr-{n}.pdf")
    return bytes(msg)


async def _seed(s: Services, messages: int, documents_mb: int) -> AccountInfo:
    d = s.directory
    pro = await d.add_professional(rpps="10003244273", email=f"dr.martin@{DOMAIN}",
                                   name="Dr Martin", profession="10",
                                   password="correct-horse-battery")  # noqa: S106
    patient, _code = await d.add_patient(ins=INS, name="Marie Dupont")
    party = await s.delivery.party_of(pro)
    first = ""
    for n in range(messages):
        refs = first if n % 20 else ""
        raw = _message(pro, patient, n, refs)
        if not refs:
            first = raw.split(b"Message-ID: ", 1)[1].split(b"\n", 1)[0].decode().strip()
        await s.delivery.deliver(party, pro.address, [patient.address], raw,
                                 authenticated=pro)
    for n in range(documents_mb // 2):
        content = _pdf(10_000 + n, 2 * 1000 * 1000)
        doc = NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                          filename=f"document-{n}.pdf", mime_type="application/pdf",
                          label=Label.CPT_REND, needs_review=False,
                          meta={"title": f"Compte rendu {n}", "author": {"name": "Dr Martin"}})
        await s.documents.file(patient.id, doc, actor_account_id=pro.id,
                               actor={"kind": "pro", "name": "Dr Martin"})
    return patient


class _Counter:
    def __init__(self) -> None:
        self.size = 0
        self.chunks = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.chunks += 1
        return len(data)


async def _run(data_dir: Path, messages: int, documents_mb: int) -> None:
    s = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        t0 = time.perf_counter()
        patient = await _seed(s, messages, documents_mb)
        print(f"seeded {messages} messages and {documents_mb // 2} documents "
              f"({documents_mb} MB) in {time.perf_counter() - t0:.1f} s")
        export, sink = account_export(s), _Counter()
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _kib("VmRSS")
        t0 = time.perf_counter()
        async for chunk in export.stream(patient, datetime.now(UTC)):
            sink.write(chunk)
        elapsed = time.perf_counter() - t0
        peak = _kib("VmHWM")
        print(f"export: {sink.size / 1e6:.1f} MB in {sink.chunks} chunks, {elapsed:.1f} s "
              f"({sink.size / 1e6 / elapsed:.0f} MB/s); RSS before {before / 1024:.0f} MiB, "
              f"peak {peak / 1024:.0f} MiB, growth {(peak - before) / 1024:.1f} MiB")
    finally:
        await s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--documents-mb", type=int, default=200)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if args.data_dir is None:
            init_data_dir(data_dir, DOMAIN)
        asyncio.run(_run(data_dir, args.messages, args.documents_mb))


if __name__ == "__main__":
    main()
