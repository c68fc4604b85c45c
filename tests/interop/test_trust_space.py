"""The trust space service: local file edits, national whitelist from a file or URL with a
last good copy, the ``mssante trust`` CLI, and what the SMTP side does with it."""

from __future__ import annotations

import asyncio
import gzip
import os
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailserver.app import Services
from mailserver.cli import main
from mailserver.runtime import Runtime
from mailserver.trust.resolver import StaticResolver
from mailserver.trust.space import TrustSpaceService
from mailserver.trust.trustlist import load_local
from tests.conftest import PASSWORD, add_pro

NS = "https://listeblanche.mssante.fr/schema"
DN1 = "CN=mx.alpha.fr,OU=1,O=Alpha,C=FR"
DN2 = "CN=mx2.alpha.fr,OU=1,O=Alpha,C=FR"


def whitelist(*entries: tuple[str, str]) -> bytes:
    body = "".join(f"<Domaine><Nom>{d}</Nom><DNCertificatOperateur>{dn}"
                   f"</DNCertificatOperateur></Domaine>" for d, dn in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="{NS}">'
            f"<DateDeGeneration>2026-11-20T06:00:00</DateDeGeneration>"
            f"<ListeDomaines>{body}</ListeDomaines></ListeBlancheMSSante>").encode()


def service(tmp_path: Path, **kw: object) -> TrustSpaceService:
    return TrustSpaceService(local_file=tmp_path / "trust" / "local.json",
                             last_good_file=tmp_path / "trust" / "last-good.xml",
                             resolver=StaticResolver({}), **kw)  # type: ignore[arg-type]


async def test_whitelist_file_refresh_keeps_last_good_copy(tmp_path: Path) -> None:
    source = tmp_path / "liste.xml"
    source.write_bytes(whitelist(("alpha.fr", DN1), ("beta.fr", DN1)))
    space = service(tmp_path, whitelist_file=source)
    first = await space.refresh()
    assert first.ok and first.domains == 2
    assert space.is_trusted_domain("alpha.fr") and space.is_trusted_domain("BETA.fr")
    assert (tmp_path / "trust" / "last-good.xml").exists()

    # A changed list: the diff is reported.
    source.write_bytes(gzip.compress(whitelist(("alpha.fr", DN1), ("alpha.fr", DN2),
                                               ("gamma.fr", DN1))))
    second = await space.refresh()
    assert second.ok and second.changes is not None
    assert second.changes.added_domains == {"gamma.fr"}
    assert second.changes.removed_domains == {"beta.fr"}
    assert second.changes.dn_added == {"alpha.fr": frozenset({DN2})}
    assert not space.is_trusted_domain("beta.fr")

    # A malformed file: refused, the previous list stays in force.
    source.write_bytes(b"<ListeBlancheMSSante><ListeDomaines><Domaine><Nom>x.fr")
    third = await space.refresh()
    assert not third.ok and third.error
    assert space.is_trusted_domain("gamma.fr")

    # A restart loads the last good copy, without the source.
    source.unlink()
    again = service(tmp_path, whitelist_file=source)
    assert again.is_trusted_domain("gamma.fr")
    assert not (await again.refresh()).ok
    assert again.is_trusted_domain("gamma.fr")


async def test_whitelist_url_with_failing_fetch(tmp_path: Path) -> None:
    answers: list[bytes | Exception] = [whitelist(("alpha.fr", DN1)), OSError("HTTP 503"),
                                        b"", whitelist(("alpha.fr", DN1), ("delta.fr", DN1))]
    urls: list[str] = []

    async def fetch(url: str) -> bytes:
        urls.append(url)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    space = service(tmp_path, whitelist_url="https://example.test/liste.xml", fetch=fetch,
                    refresh_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(space.run(stop))
    for _ in range(100):
        if not answers:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    stop.set()
    await task
    assert len(urls) >= 4 and set(urls) == {"https://example.test/liste.xml"}
    assert space.is_trusted_domain("delta.fr")
    assert space.trustlist.dn_allowed("alpha.fr", _name(DN1))


def _name(dn: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "O": NameOID.ORGANIZATION_NAME, "C": NameOID.COUNTRY_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v)
                      for k, v in (p.split("=", 1) for p in reversed(dn.split(",")))])


async def test_local_file_edits_apply_without_restart(tmp_path: Path, data_dir: Path) -> None:
    from mailserver.app import build_trust_space
    from mailserver.config import load

    config = load(data_dir / "mssante.toml")
    space = build_trust_space(config)
    assert isinstance(space, TrustSpaceService)
    assert space.empty
    rc = await asyncio.to_thread(main, [
        "trust", "add", "--data-dir", str(data_dir), "--domain", "Beta.MSSante.test",
        "--ca", str(data_dir / "tls" / "ca.pem"), "--dn", DN1, "--mx", "127.0.0.1:2525"])
    assert rc == 0
    await asyncio.sleep(1.1)  # re-read at most once a second
    assert space.is_trusted_domain("beta.mssante.test")
    assert space.next_hop("beta.mssante.test") is not None
    assert await space.next_hops("beta.mssante.test") == [("127.0.0.1", 2525)]
    local = load_local(data_dir / "trust" / "local.json")
    assert len(local.ca_pems) == 1
    rc = await asyncio.to_thread(main, ["trust", "remove", "--data-dir", str(data_dir),
                                        "--domain", "beta.mssante.test"])
    assert rc == 0
    space.reload()
    assert not space.is_trusted_domain("beta.mssante.test")


def test_trust_cli_list_and_refresh(data_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "liste.xml"
    source.write_bytes(whitelist(("alpha.fr", DN1)))
    assert main(["trust", "refresh", "--data-dir", str(data_dir), "--file", str(source)]) == 0
    assert "1 domains" in capsys.readouterr().out
    source.write_bytes(whitelist(("alpha.fr", DN1), ("omega.fr", DN2)))
    assert main(["trust", "refresh", "--data-dir", str(data_dir), "--file", str(source)]) == 0
    assert "+ omega.fr" in capsys.readouterr().out
    source.write_text("not xml")
    assert main(["trust", "refresh", "--data-dir", str(data_dir), "--file", str(source)]) == 1
    assert "keeping the last good copy" in capsys.readouterr().out
    assert main(["trust", "list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "omega.fr  [national]" in out and f"DN {DN2}" in out
    assert main(["trust", "add", "--data-dir", str(data_dir), "--domain", "bad domain"]) == 2


async def test_mx_records_from_a_local_zone(tmp_path: Path) -> None:
    space = TrustSpaceService(
        local_file=tmp_path / "l.json", last_good_file=tmp_path / "g.xml",
        resolver=StaticResolver({"alpha.fr": {"MX": [[20, "mx2.alpha.fr"], [10, "mx1.alpha.fr"]]},
                                 "beta.fr": {"A": ["127.0.0.1"]}}))
    assert await space.next_hops("alpha.fr") == [("mx1.alpha.fr", 25), ("mx2.alpha.fr", 25)]
    assert await space.next_hops("beta.fr") == [("beta.fr", 25)]
    assert await space.next_hops("gamma.fr") == []


def _rcpt_code(runtime: Runtime, tls: ssl.SSLContext, sender: str, rcpt: str) -> int:
    host, port = runtime.ports["submission"]
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as c:
        c.starttls(context=tls)
        c.login(sender, PASSWORD)
        c.mail(sender)
        code, _ = c.rcpt(rcpt)
        c.rset()
        return code


async def test_refresh_command_reaches_running_server(
        runtime: Runtime, services: Services, client_tls: ssl.SSLContext,
        tmp_path: Path) -> None:
    """``mssante trust refresh --file`` in its own process: the running server (which has no
    whitelist source of its own) follows within a second or so, without a restart."""
    doctor = await add_pro(services, "dr.martin")
    space = services.delivery.trust
    assert isinstance(space, TrustSpaceService)
    rcpt = "dr.x@omega.fr"
    assert await asyncio.to_thread(_rcpt_code, runtime, client_tls, doctor.address, rcpt) == 550
    source = tmp_path / "liste.xml"
    source.write_bytes(whitelist(("alpha.fr", DN1), ("omega.fr", DN2)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = await asyncio.to_thread(
        subprocess.run,  # our own command line, as an operator runs it
        [sys.executable, "-m", "mailserver", "--log-level", "WARNING", "trust", "refresh",
         "--data-dir", str(runtime.config.data_dir), "--file", str(source)],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    start = time.monotonic()
    while time.monotonic() - start < 5:
        if await asyncio.to_thread(_rcpt_code, runtime, client_tls, doctor.address,
                                   rcpt) == 250:
            break
        await asyncio.sleep(0.1)
    took = time.monotonic() - start
    assert space.is_trusted_domain("omega.fr"), "running server kept the old whitelist"
    assert took < 3, took


async def test_run_polls_copies_refreshed_elsewhere(tmp_path: Path) -> None:
    """A server's refresher also follows a last good copy another process wrote."""
    ours, theirs = service(tmp_path), service(tmp_path, whitelist_file=tmp_path / "l.xml")
    (tmp_path / "l.xml").write_bytes(whitelist(("alpha.fr", DN1)))
    stop = asyncio.Event()
    task = asyncio.create_task(ours.run(stop))
    try:
        assert (await theirs.refresh()).ok
        for _ in range(40):
            if ours.is_trusted_domain("alpha.fr"):
                break
            await asyncio.sleep(0.1)
        assert ours.is_trusted_domain("alpha.fr")
    finally:
        stop.set()
        await task
