"""The whole SMTP session stack: ``OperatorSMTP`` with the real ``MailHandler``, its directory
(SQLite in a temporary data dir), the send policy, the delivery into the store, and an AUTH
that succeeds with the known test account (``AUTH PLAIN AGRtYXJ0aW5A...``, the seeds show it).

The first input byte picks the role (even: inbound MTA, odd: submission); the rest is one
client session written to a real socket pair. Unlike ``smtp_commands`` (the parser with an
accept-all handler) directory lookups, the policy's decisions, the lockout, DKIM verification
(no DNS: no key is ever found) and the delivery's writes are fuzzed. STARTTLS cannot be
negotiated by bytes from a fuzzer, so neither role requires it here (the listeners of
``smtp_factory`` do). The session must end by itself and no command may reach
``handle_exception``; a ``451 4.3.0`` (internal error) is a finding.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mailserver.app import Services, open_services
from mailserver.config import AuthConfig
from mailserver.smtp.handler import MailHandler
from mailserver.trust.resolver import StaticResolver
from mailserver.trust.space import TrustSpaceService
from tests.conftest import INS, RPPS, add_patient, add_pro, make_config, make_data_dir
from tests.fuzz.targets.smtp_commands import CountingSMTP, consumed_session
from tests.interop.test_trust_space import DN1, whitelist

TRUSTED = ("autre-hopital.mssante.fr", "patient.autre-hopital.mssante.fr")

_LOOP = asyncio.new_event_loop()
# tmpfs when there is one: the delivery's commits fsync, which on a disk would bound the rate.
_SHM = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private (0700) directory in it
_TMP = Path(tempfile.mkdtemp(prefix="mssante-fuzz-", dir=_SHM if _SHM.is_dir() else None))


async def _open(data_dir: Path) -> Services:
    config = make_config(data_dir)
    # No lockout: a fuzzed wrong password must not lock the account the seeds log in with.
    # No client certificate: a fuzzer cannot do TLS, and the peers' domains are what matters.
    config = dataclasses.replace(
        config, auth=AuthConfig(fail_delay=0.0, max_fail_delay=0.0, lockout_threshold=10**9,
                                lockout_seconds=1),
        trust=dataclasses.replace(config.trust, require_client_cert=False))
    listed = data_dir / "whitelist.xml"
    listed.write_bytes(whitelist(*((d, DN1) for d in TRUSTED)))
    trust = TrustSpaceService(local_file=data_dir / "trust-local.json",
                              last_good_file=data_dir / "trust-last-good.xml",
                              whitelist_file=listed, resolver=StaticResolver({}))
    assert (await trust.refresh()).ok
    services = await open_services(config, fast_passwords=True, trust=trust)
    await add_pro(services, "dr.martin", RPPS[0])
    await add_pro(services, "dr.durand", RPPS[1])
    await add_patient(services, INS[0])
    return services


_SERVICES = _LOOP.run_until_complete(_open(make_data_dir(_TMP / "data")))
_HANDLERS = {role: MailHandler(_SERVICES.config, _SERVICES.directory, _SERVICES.delivery,
                               role=role, txt_lookup=lambda _name: None)
             for role in ("inbound", "submission")}


# At exit the executors the store's threads need are already shut: the data dir just goes.
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


class _Server(CountingSMTP):
    def __init__(self, role: str) -> None:
        smtp = _SERVICES.config.smtp
        with warnings.catch_warnings():  # AUTH without TLS: the fuzzer cannot do TLS
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            super().__init__(
                _HANDLERS[role], hostname="mx.fuzz.test", ident="fuzz", data_size_limit=4096,
                enable_SMTPUTF8=True, decode_data=False, timeout=5, data_timeout=5,
                max_errors=smtp.max_bad_commands, header_size_limit=1024,
                auth_required=role == "submission", auth_require_tls=False, loop=_LOOP,
            )
        self.errors: list[BaseException] = []

    async def handle_exception(self, error: Exception) -> str:
        self.errors.append(error)
        return await super().handle_exception(error)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    if not data:
        return
    role = "submission" if data[0] & 1 else "inbound"
    server: Any = None

    def factory() -> _Server:
        nonlocal server
        server = _Server(role)
        return server

    replies = _LOOP.run_until_complete(consumed_session(_LOOP, factory, data[1:]))
    if server is not None and server.errors:
        raise server.errors[0]
    assert replies.startswith(b"220 ")
    assert b"451 4.3.0" not in replies
