"""SORT and THREAD over 100,000 messages on one core: the algorithms and the key loading.

Usage::

    .venv/bin/python bench/sort_bench.py [--messages 100000] [--seed 1]

Builds ``--messages`` synthetic messages (header blocks with realistic From/To/Subject/Date,
one conversation in three a thread of 2 to 12 replies with References and ``Re:`` subjects),
computes each one's sealed IMAP summary as the server does (``Meta.of``, sealed with AES-GCM
as the store keeps it), then times, best of three:

* ``keys (cold)``: AES-GCM unseal + ``KEYS_CODEC.loads`` of every summary, what the first SORT
  or THREAD of a session pays (the keys are then kept for the session; the server reads them
  with the collector running, the bench with it paused);
* ``SORT (X)``: :func:`~mailserver.imap.sorting.sort_items` for ARRIVAL, DATE, SUBJECT, FROM
  and ``REVERSE DATE SUBJECT``;
* ``THREAD=REFERENCES`` and ``THREAD=ORDEREDSUBJECT``, including the response encoding.

The store's row reads (UID, INTERNALDATE, size: one indexed query per 2,000 messages) are not
included; see ``bench/imap_bench.py`` for those.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailserver.imap.meta import KEYS_CODEC, Meta  # noqa: E402
from mailserver.imap.sorting import (  # noqa: E402
    Item,
    encode_threads,
    paused_gc,
    sort_items,
    thread_orderedsubject,
    thread_references,
)
from mailserver.store.crypto import new_data_key, seal, unseal  # noqa: E402

NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "Élise"]
TOPICS = ["Compte rendu", "Résultats d'analyse", "Demande d'avis", "Ordonnance",
          "Courrier de sortie", "Bilan", "IRM lombaire", "Suivi", "Consultation", "Dossier"]


def _headers(n: int, rng: random.Random, parent: tuple[str, str, list[str]] | None
             ) -> tuple[bytes, str, list[str]]:
    who = rng.choice(NAMES)
    mid = f"<m{n}@hopital.example>"
    if parent is None:
        subject, refs = f"{rng.choice(TOPICS)} {rng.randrange(5000)}", []
    else:
        subject, refs = "Re: " + parent[1], [*parent[2], parent[0]][-10:]
    when = 1_700_000_000 + n * 60 + rng.randrange(3600)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0100", time.gmtime(when))
    head = (f'From: "Dr {who}" <{who.lower()}.{n % 97}@hopital.example>\r\n'
            f"To: dr.x@hopital.example\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: {mid}\r\n"
            + (f"References: {' '.join(refs)}\r\nIn-Reply-To: {refs[-1]}\r\n" if refs else "")
            + "\r\n")
    return head.encode(), mid, refs


def build(count: int, seed: int) -> tuple[list[bytes], list[tuple[int, float, int]]]:
    """Sealed summary blobs (as the store keeps them) and (uid, arrival, size) rows."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    key = new_data_key()
    blobs: list[bytes] = []
    rows: list[tuple[int, float, int]] = []
    open_threads: list[tuple[str, str, list[str]]] = []
    for n in range(1, count + 1):
        parent = rng.choice(open_threads) if open_threads and rng.random() < 0.5 else None
        head, mid, refs = _headers(n, rng, parent)
        meta = Meta.of(head + b"Bonjour,\r\nci-joint le compte rendu.\r\n")
        fields = meta.fields
        if parent is None and rng.random() < 0.33:
            open_threads.append((mid, fields.subject, refs))
            open_threads = open_threads[-200:]
        blobs.append(seal(key, meta.to_json(), b"imapmeta:1:k%d" % n))
        rows.append((n, 1_700_000_000.0 + n * 60, 2000 + rng.randrange(200_000)))
    build.key = key  # type: ignore[attr-defined]
    return blobs, rows


def best(fn: Callable[[], object], rounds: int = 3) -> str:
    """Best of ``rounds``: CPU time of this process (what one core spent, whatever else the
    machine runs) and wall time; the collector paused as the server does."""
    cpu, wall = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        with paused_gc():
            fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return f"{min(cpu):6.3f} s CPU {min(wall):6.3f} s wall"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    blobs, rows = build(args.messages, args.seed)
    key: bytes = build.key  # type: ignore[attr-defined]
    items: list[Item] = []

    def load() -> None:
        items.clear()
        for n, (blob, (uid, arrival, size)) in enumerate(zip(blobs, rows, strict=True)):
            fields = KEYS_CODEC.loads(unseal(key, blob, b"imapmeta:1:k%d" % (n + 1))).fields
            items.append(Item(n + 1, uid, arrival, size, fields))

    print(f"{args.messages} messages, one core")
    print(f"  {'keys (cold)':28}{best(load, 1)}")
    for crit in (["ARRIVAL"], ["DATE"], ["SUBJECT"], ["FROM"], ["REVERSE DATE", "SUBJECT"]):
        spec = [(c.split()[-1], c.startswith("REVERSE")) for c in crit]
        print(f"  {'SORT (' + ' '.join(crit) + ')':28}{best(lambda s=spec: sort_items(items, s))}")
    print(f"  {'THREAD=REFERENCES':28}"
          f"{best(lambda: encode_threads(thread_references(items), uid=True))}")
    print(f"  {'THREAD=ORDEREDSUBJECT':28}"
          f"{best(lambda: encode_threads(thread_orderedsubject(items), uid=True))}")


if __name__ == "__main__":
    main()
