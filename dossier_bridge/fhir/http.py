"""What every ``/fhir`` handler shares: the collaborators (`FhirDeps`), authentication (HTTP
Basic over HTTPS or loopback, or a Bearer token; professionals only, see
`dossier_bridge.fhir.app`), FHIR JSON responses, refusals as OperationOutcomes and the request
body reader.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from dossier_bridge.fhir.mapping import FHIR_JSON, outcome
from dossier_bridge.fhir.provide import Provider
from dossier_bridge.profile_store import ProfileStore
from dossier_bridge.store import DocumentStore
from dossier_bridge.tokens import TokenRepository
from mailserver.directory.service import AccountInfo
from mailserver.errors import AuthError, NotFound
from mailserver.store.audit import Channel

__all__ = ["FhirDirectory", "FhirDeps", "DEPS", "MAX_BUNDLE_BYTES", "Refused", "respond",
           "peer", "secure", "base_url", "authenticate", "errors", "read_json"]

log = logging.getLogger("dossier_bridge.fhir.app")

MAX_BUNDLE_BYTES = 48 * 1024 * 1024
"""An ITI-65 request body (base64 inflates the 25 MB document limit by 4/3)."""
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FhirDirectory(Protocol):
    """What the FHIR app needs from the directory."""

    async def authenticate(self, identifier: str, password: str, *, client: str | None = None,
                           allow_patients: bool = False, channel: Channel = Channel.SYSTEM,
                           mechanism: str = "password") -> AccountInfo: ...

    async def get(self, account_id: int) -> AccountInfo: ...

    async def by_ins(self, ins: str) -> AccountInfo | None: ...


@dataclass(frozen=True, slots=True)
class FhirDeps:
    """The FHIR app's collaborators (built by the composition root)."""

    documents: DocumentStore
    directory: FhirDirectory
    tokens: TokenRepository
    provider: Provider
    trusted_proxies: tuple[str, ...] = ()
    profile: ProfileStore | None = None
    """The medical profiles (``Condition``, ``Observation``...); None serves documents only."""


DEPS = web.AppKey("fhir_deps", FhirDeps)


class Refused(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text


def respond(data: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.Response(status=status, body=json.dumps(data, ensure_ascii=False).encode(),
                        content_type=FHIR_JSON, charset="utf-8",
                        headers={"Cache-Control": "no-store", **headers})


def peer(request: web.Request) -> str:
    name = request.transport.get_extra_info("peername") if request.transport else None
    return str(name[0]) if isinstance(name, tuple) and name else (request.remote or "")


def secure(request: web.Request, trusted: tuple[str, ...]) -> bool:
    """HTTPS (directly or from a trusted proxy saying so), or a loopback client."""
    if request.transport is not None and request.transport.get_extra_info("sslcontext"):
        return True
    client = peer(request)
    if client in trusted:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1]
        return proto.strip().lower() == "https"
    try:
        return ipaddress.ip_address(client.split("%")[0]).is_loopback
    except ValueError:
        return False


def base_url(request: web.Request, deps: FhirDeps) -> str:
    tls = request.transport is not None and bool(request.transport.get_extra_info("sslcontext"))
    if peer(request) in deps.trusted_proxies:
        tls = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip() == "https"
    return f"{'https' if tls else 'http'}://{request.host}/fhir"


async def authenticate(request: web.Request) -> AccountInfo:
    deps = request.app[DEPS]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        account_id = await deps.tokens.resolve(value.strip())
        account = await _account_of(deps, account_id) if account_id is not None else None
    elif scheme == "basic":
        if not secure(request, deps.trusted_proxies):
            raise Refused(403, "security", "HTTPS requis pour l'authentification Basic.")
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Refused(401, "login", "Authentification requise.") from exc
        try:
            account = await deps.directory.authenticate(user, password, client=peer(request),
                                                        channel=Channel.FHIR, mechanism="basic")
        except AuthError as exc:
            log.info("fhir: authentication refused")
            raise Refused(401, "login", "Identifiants refusés.") from exc
    else:
        raise Refused(401, "login", "Authentification requise.")
    if account is None or account.is_patient or account.status != "open":
        raise Refused(401, "login", "Identifiants refusés.")
    return account


async def _account_of(deps: FhirDeps, account_id: int) -> AccountInfo | None:
    try:
        return await deps.directory.get(account_id)
    except NotFound:
        return None


@web.middleware
async def errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        extra = {"WWW-Authenticate": 'Basic realm="fhir", Bearer'} if exc.status == 401 else {}
        return respond(outcome(exc.code, exc.text), exc.status, **extra)
    except web.HTTPException as exc:
        return respond(outcome("not-found" if exc.status == 404 else "invalid", exc.reason),
                     exc.status)
    except Exception:
        log.exception("fhir: server error on %s", request.method)
        return respond(outcome("exception", "Erreur interne."), 500)

async def read_json(request: web.Request) -> Any:
    if request.content_type not in (FHIR_JSON, "application/json"):
        raise Refused(415, "not-supported", "Content-Type application/fhir+json attendu.")
    if (request.content_length or 0) > MAX_BUNDLE_BYTES:
        raise Refused(413, "too-costly", "Lot trop volumineux.")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BUNDLE_BYTES:
            raise Refused(413, "too-costly", "Lot trop volumineux.")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "invalid", "JSON invalide.") from exc