"""IHE MHD (``/fhir/``) benchmark: ITI-67 search latency and ITI-68 retrieval throughput.

* ``search``: a patient with ``--docs`` documents (default 1,000, small text documents filed
  through `DocumentStore.file`); the treating doctor (who sees everything) runs ``--searches``
  ITI-67 searches (``patient.identifier`` + ``status=current``, all documents returned);
  latency of the whole HTTP request: the first search (DocumentReference JSON not yet
  validated, see `dossier_bridge.fhir.mapping.References`), then p50/p95/max of the others.
* ``retrieve``: ``--big`` documents of 1 MB (incompressible; sealed in the blob store) are read
  ``--rounds`` times each over ITI-68, with ``--concurrency`` requests in flight; MB/s and
  requests/s. Every read is an access-log entry (one write transaction each).

The server is the real HTTP listener (webmail with ``/fhir`` mounted, as the runtime does) on
127.0.0.1, the client aiohttp with a bearer token. Throwaway data dir (SQLite).

    .venv/bin/python -m bench.fhir_bench --docs 1000 --searches 40
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attachments.labels import Label  # noqa: E402
from dossier_bridge.fhir.app import FhirDeps, make_fhir_app  # noqa: E402
from dossier_bridge.fhir.provide import Provider  # noqa: E402
from dossier_bridge.store import DocumentStore, NewDocument  # noqa: E402
from dossier_bridge.tokens import TokenRepository  # noqa: E402
from mailserver.app import Services, open_services  # noqa: E402
from mailserver.cli.setup import init_data_dir  # noqa: E402
from mailserver.config import load  # noqa: E402
from webmail.app import start_http  # noqa: E402

DOMAIN = "hopital.mssante.test"
INS = "279035121518989"
LABELS = list(Label)


def _doc(n: int, size: int) -> NewDocument:
    content = f"document {n}\n".encode() + (os.urandom(size) if size else b"")
    return NewDocument(content=content, sha256=hashlib.sha256(content).hexdigest(),
                       filename=f"doc{n}.txt", mime_type="text/plain",
                       label=LABELS[n % len(LABELS)],
                       meta={"title": f"Document {n}", "type_code": {"code": "11488-4"},
                             "author": {"rpps": "10003244273", "name": "Dr Martin"}})


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _fill(s: Services, store: DocumentStore, docs: int, big: int) -> tuple[int, list[int]]:
    patient, _ = await s.directory.add_patient(ins=INS, name="Marie Dupont")
    t0 = time.perf_counter()
    for n in range(docs):
        await store.file(patient.id, _doc(n, 0), actor_account_id=None)
    print(f"filed {docs} documents in {time.perf_counter() - t0:.1f} s")
    bigs = [(await store.file(patient.id, _doc(docs + n, 1024 * 1024),
                              actor_account_id=None)).document_id for n in range(big)]
    return patient.id, bigs


async def _search(http: aiohttp.ClientSession, base: str, auth: dict[str, str],
                  count: int) -> None:
    params = {"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.10|{INS}", "status": "current"}
    times, total = [], 0
    for _ in range(count):
        t0 = time.perf_counter()
        async with http.get(f"{base}/DocumentReference", params=params, headers=auth) as r:
            body = await r.json(content_type=None)
            assert r.status == 200, body
        times.append(time.perf_counter() - t0)
        total = body["total"]
    cold, times = times[0], times[1:]
    print(f"ITI-67 search, {total} DocumentReferences per Bundle: first (cold) "
          f"{cold * 1000:.0f} ms; then {len(times)} searches: "
          f"p50 {statistics.median(times) * 1000:.0f} ms, p95 {_pct(times, 0.95) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")


async def _retrieve(http: aiohttp.ClientSession, base: str, auth: dict[str, str],
                    patient_id: int, ids: list[int], rounds: int, concurrency: int) -> None:
    queue = [i for _ in range(rounds) for i in ids]
    sizes: list[int] = []

    async def worker() -> None:
        while queue:
            doc_id = queue.pop()
            async with http.get(f"{base}/Binary/{patient_id}-{doc_id}", headers=auth) as r:
                body = await r.read()
                assert r.status == 200
            sizes.append(len(body))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    print(f"ITI-68 retrieve, {len(sizes)} x 1 MB, concurrency {concurrency}: "
          f"{sum(sizes) / elapsed / 1e6:.1f} MB/s, {len(sizes) / elapsed:.1f} documents/s")


async def run(data_dir: Path, args: argparse.Namespace) -> None:
    s = await open_services(load(data_dir / "mssante.toml"), fast_passwords=True)
    store = DocumentStore(s.db, s.keys, s.store.blobs, inline_max=s.config.store.inline_max)
    tokens = TokenRepository(s.db)
    app = make_fhir_app(FhirDeps(documents=store, directory=s.directory, tokens=tokens,
                                 provider=Provider(store, s.directory.by_ins)))
    runner, (host, port) = await start_http(s, "127.0.0.1", 0, mounts={"/fhir": app})
    try:
        patient_id, bigs = await _fill(s, store, args.docs, args.big)
        doctor = await s.directory.add_professional(
            rpps="10003244273", email=f"dr.martin@{DOMAIN}", name="Dr Martin", profession="10",
            password="correct-horse-battery")  # noqa: S106 - throwaway bench account
        await store.consents.set_treating_doctor(patient_id, doctor)
        auth = {"Authorization": f"Bearer {await tokens.issue(doctor.id)}"}
        base = f"http://{host}:{port}/fhir"
        async with aiohttp.ClientSession() as http:
            await _search(http, base, auth, args.searches)
            await _retrieve(http, base, auth, patient_id, bigs, args.rounds, args.concurrency)
    finally:
        await runner.cleanup()
        await s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=41)
    parser.add_argument("--big", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        init_data_dir(data_dir, DOMAIN)
        asyncio.run(run(data_dir, args))


if __name__ == "__main__":
    main()
