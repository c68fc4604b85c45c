"""Dossier bridge benchmark: documents filed per second and p95 filing latency.

Two workloads, each message distinct (no deduplication shortcut):

* ``pdf``: a message carrying one ~200 KB PDF (text layer + padding);
* ``xdm``: a message carrying a ~2 MB IHE_XDM.ZIP (one CDA + one ~2 MB PDF inside).

Each message is stored in the patient's INBOX first (as delivery does); the measured time is
`Filer.run` (read the sealed message, analyse, seal, write blobs, commit, log) for one message,
with ``--concurrency`` filings in flight. Uses a throwaway data dir (SQLite) unless ``--data-dir``.

    .venv/bin/python -m bench.bridge_bench --count 40 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dossier_bridge.filing import Filer  # noqa: E402
from dossier_bridge.store import DocumentStore  # noqa: E402
from mailserver.app import open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from tests.attachments.corpus import (  # noqa: E402
    Attachment,
    XdmDoc,
    make_cda,
    make_message,
    make_metadata,
    make_pdf,
    make_xdm,
)

DOMAIN = "hopital.mssante.test"
INS = "279035121518989"


def _padded_pdf(n: int, size: int) -> bytes:
    base = make_pdf(f"Compte rendu de consultation numero {n}")
    # Incompressible padding after %%EOF (a trailing comment: PDF readers ignore it).
    return base + b"\n%" + os.urandom(max(0, size - len(base)))


def _pdf_message(n: int) -> bytes:
    msg = make_message([Attachment(_padded_pdf(n, 200 * 1024), "cr.pdf", "application", "pdf")])
    msg.replace_header("From", f"dr.martin@{DOMAIN}")
    msg.replace_header("Message-ID", f"<pdf{n}@bench>")
    return bytes(msg)


def _xdm_message(n: int) -> bytes:
    cda = make_cda().replace(b"DOC-42", f"DOC-{n}".encode())
    pdf = _padded_pdf(n, 2 * 1024 * 1024 - 4096)
    docs = [XdmDoc(cda, "DOC0001.XML"),
            XdmDoc(pdf, "DOC0002.PDF", mime_type="application/pdf", title="Rendu PDF")]
    # A distinct uniqueId per package (the corpus numbers them 1.2.250.1.999.3.<i>).
    metadata = make_metadata(docs).replace(b'value="1.2.250.1.999.3.',
                                           f'value="1.2.250.1.999.{n}.'.encode())
    archive = make_xdm(docs, metadata=metadata)
    msg = make_message([Attachment(archive, "IHE_XDM.ZIP", "application", "zip")],
                       headers={"X-MSS-INS": "O", "X-MSS-CODECDA": "11488-4"})
    msg.replace_header("From", f"dr.martin@{DOMAIN}")
    msg.replace_header("Message-ID", f"<xdm{n}@bench>")
    return bytes(msg)


async def _run(data_dir: Path, kind: str, count: int, concurrency: int) -> None:
    services = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    try:
        d = services.directory
        dr = await d.lookup(f"dr.martin@{DOMAIN}") or await d.add_professional(
            rpps="10003244273", email=f"dr.martin@{DOMAIN}", name="Dr Martin", profession="10",
            password="correct-horse-battery")  # noqa: S106 - bench credential
        assert dr is not None
        pt = await d.by_ins(INS) or (await d.add_patient(ins=INS, name="Marie Dupont"))[0]
        build = _pdf_message if kind == "pdf" else _xdm_message
        stamp = int(time.time())
        raws = [build(stamp * 1000 + i) for i in range(count)]
        ids = [(await services.store.append(pt.id, "INBOX", raw)).message_id for raw in raws]
        documents = DocumentStore(services.db, services.keys, services.store.blobs,
                                  inline_max=services.config.store.inline_max)
        filer = Filer(store=services.store, documents=documents, directory=d,
                      receipts=services.system_mail,
                      patient_domain=services.config.patient_domain)
        latencies: list[float] = []
        docs = 0
        sem = asyncio.Semaphore(concurrency)

        async def one(mid: int) -> None:
            nonlocal docs
            async with sem:
                t0 = time.perf_counter()
                out = await filer.run(pt.id, mid)
                latencies.append(time.perf_counter() - t0)
                docs += sum(1 for _, _, created in out.documents if created)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(mid) for mid in ids))
        elapsed = time.perf_counter() - t0
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        size = statistics.mean(len(r) for r in raws) / 1024
        print(f"{kind}: {count} messages ({size:.0f} KiB each), concurrency {concurrency}: "
              f"{docs} documents filed in {elapsed:.2f} s = {docs / elapsed:.1f} docs/s, "
              f"{count / elapsed:.1f} msgs/s; latency p50 {statistics.median(latencies) * 1000:.0f}"
              f" ms, p95 {p95 * 1000:.0f} ms")
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("pdf", "xdm", "both"), default="both")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            init_data_dir(data_dir, DOMAIN)
        for kind in (("pdf", "xdm") if args.kind == "both" else (args.kind,)):
            asyncio.run(_run(data_dir, kind, args.count, args.concurrency))


if __name__ == "__main__":
    main()
