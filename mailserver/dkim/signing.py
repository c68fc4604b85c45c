"""DKIM signing and verification (RFC 6376, RFC 8463 Ed25519) with dkimpy.

Theory of operation
-------------------
Every outgoing message is signed twice, once with RSA-2048 (``rsa-sha256``)
and once with Ed25519 (``ed25519-sha256``), RFC 8463 section 6 ("signers
SHOULD also sign with RSA" during the transition). Each algorithm has its own
DNS key record, so a *selector base* such as ``mss2026a`` yields two DNS
selectors: ``mss2026a-rsa`` and ``mss2026a-ed``.

Rotation uses two selector bases (:class:`KeyRotation`): ``current`` signs;
``next`` is generated and published ahead of time and becomes current on
:meth:`KeyRotation.rotate`. ``mssante dkim show`` prints the TXT records of
both (:func:`dns_txt_records`).

Verification takes a pluggable TXT lookup (``name -> text | None``; raise
:class:`TempDnsError` for a temporary failure) so tests use a dict
(:class:`DictTxtLookup`). Results are rendered per RFC 8601
(:func:`authentication_results`) and turned into an action by
:func:`decide` according to the configured :class:`FailurePolicy`.
DKIM is not required in the trust space (domain README 4): an unsigned
message is accepted under both policies.
"""

from __future__ import annotations

import base64
import enum
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailserver.files import atomic_write

__all__ = [
    "DEFAULT_SIGNED_HEADERS",
    "DictTxtLookup",
    "DkimAction",
    "DkimDecision",
    "DkimError",
    "DkimResult",
    "FailurePolicy",
    "KeyRotation",
    "SelectorKeys",
    "SignatureResult",
    "TempDnsError",
    "authentication_results",
    "decide",
    "dns_txt_records",
    "generate_keys",
    "load_keys",
    "sign",
    "txt_records",
    "verify",
]

#: Headers signed (RFC 6376 5.4.1 recommendations plus MIME and MSSanté headers).
#: From is listed twice so that a second From cannot be added (RFC 6376 8.15).
DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "From", "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
    "In-Reply-To", "References", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "Content-ID",
    "Disposition-Notification-To", "X-MSS-MES", "X-MSS-INS", "X-MSS-CODECDA", "X-MSS-NIL",
)

RSA_SUFFIX = "-rsa"
ED25519_SUFFIX = "-ed"


class DkimError(Exception):
    """Key material or message that cannot be signed."""


class TempDnsError(Exception):
    """Raised by a TXT lookup for a temporary failure (maps to ``temperror``)."""


@dataclass(frozen=True, slots=True)
class SelectorKeys:
    """The two private keys of one selector base.

    Attributes:
        selector: selector base; DNS selectors add ``-rsa`` / ``-ed``.
        rsa_pem: RSA private key, PEM (PKCS#8).
        ed25519_pem: Ed25519 private key, PEM (PKCS#8).
    """

    selector: str
    rsa_pem: bytes
    ed25519_pem: bytes

    @property
    def rsa_selector(self) -> str:
        """DNS selector of the RSA key."""
        return self.selector + RSA_SUFFIX

    @property
    def ed25519_selector(self) -> str:
        """DNS selector of the Ed25519 key."""
        return self.selector + ED25519_SUFFIX


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """Two selector bases: ``current`` signs, ``next`` is pre-published."""

    current: SelectorKeys
    next: SelectorKeys | None = None

    @property
    def signing(self) -> SelectorKeys:
        """The keys that sign now."""
        return self.current

    @property
    def published(self) -> tuple[SelectorKeys, ...]:
        """Keys whose records must be in DNS (current, then next)."""
        return (self.current,) if self.next is None else (self.current, self.next)

    def rotate(self) -> KeyRotation:
        """Promote ``next`` to ``current`` (old current is dropped from DNS later)."""
        if self.next is None:
            raise DkimError("no next selector to rotate to")
        return replace(self, current=self.next, next=None)


def _pkcs8(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_keys(directory: str | os.PathLike[str], selector: str) -> SelectorKeys:
    """Generate an RSA-2048 and an Ed25519 key and write them as PEM files.

    Files: ``<selector>.rsa.pem`` and ``<selector>.ed25519.pem``, mode 0600,
    never overwritten.

    Raises:
        FileExistsError: a key file of that selector already exists.
    """
    base = Path(directory)
    keys = SelectorKeys(
        selector=selector,
        rsa_pem=_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ed25519_pem=_pkcs8(ed25519.Ed25519PrivateKey.generate()),
    )
    atomic_write(base / f"{selector}.rsa.pem", keys.rsa_pem, exclusive=True)
    atomic_write(base / f"{selector}.ed25519.pem", keys.ed25519_pem, exclusive=True)
    return keys


def load_keys(directory: str | os.PathLike[str], selector: str) -> SelectorKeys:
    """Read the key files written by :func:`generate_keys` (validated)."""
    base = Path(directory)
    keys = SelectorKeys(
        selector,
        (base / f"{selector}.rsa.pem").read_bytes(),
        (base / f"{selector}.ed25519.pem").read_bytes(),
    )
    _rsa_key(keys)
    _ed_key(keys)
    return keys


def _rsa_key(keys: SelectorKeys) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(keys.rsa_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError("RSA key file holds another key type")
    return key


def _ed_key(keys: SelectorKeys) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(keys.ed25519_pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DkimError("Ed25519 key file holds another key type")
    return key


def txt_records(keys: SelectorKeys, domain: str) -> list[tuple[str, str]]:
    """(owner name, TXT value) pairs for one selector base (RFC 6376 3.6.1, RFC 8463 4)."""
    rsa_pub = _rsa_key(keys).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_pub = _ed_key(keys).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return [
        (f"{keys.rsa_selector}._domainkey.{domain}.",
         f"v=DKIM1; k=rsa; p={base64.b64encode(rsa_pub).decode()}"),
        (f"{keys.ed25519_selector}._domainkey.{domain}.",
         f"v=DKIM1; k=ed25519; p={base64.b64encode(ed_pub).decode()}"),
    ]


def dns_txt_records(
    selector: str | SelectorKeys | KeyRotation, domain: str, keys_dir: str | os.PathLike[str] = "."
) -> list[str]:
    """Zone-file lines to publish, as ``mssante dkim show`` prints them.

    Args:
        selector: a selector base (keys read from ``keys_dir``), loaded keys,
            or a rotation (both current and next are printed).
        domain: signing domain.
        keys_dir: where key files live when ``selector`` is a name.

    Returns:
        One line per record; values over 255 octets are split into several
        quoted strings (RFC 1035 3.3.14, RFC 6376 3.6.2.2).
    """
    if isinstance(selector, KeyRotation):
        sets: Iterable[SelectorKeys] = selector.published
    elif isinstance(selector, SelectorKeys):
        sets = (selector,)
    else:
        sets = (load_keys(keys_dir, selector),)
    lines = []
    for keys in sets:
        for owner, value in txt_records(keys, domain):
            chunks = " ".join(f'"{value[i:i + 250]}"' for i in range(0, len(value), 250))
            lines.append(f"{owner} IN TXT ( {chunks} )")
    return lines


def sign(
    message: bytes,
    domain: str,
    keys: SelectorKeys | KeyRotation,
    headers: Iterable[str] = DEFAULT_SIGNED_HEADERS,
) -> bytes:
    """Return ``message`` with an Ed25519 and an RSA DKIM-Signature prepended.

    Args:
        message: the message, CRLF or LF line endings.
        domain: the ``d=`` domain (should align with the From domain).
        keys: the selector keys, or a rotation (its ``current`` signs).
        headers: header names to sign; names absent from the message are
            signed too (their later addition breaks the signature).

    Raises:
        DkimError: the message or keys cannot be signed.
    """
    chosen = keys.signing if isinstance(keys, KeyRotation) else keys
    include = [h.encode("ascii") for h in headers]
    ed_raw = _ed_key(chosen).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    try:
        rsa_sig = dkim.sign(
            message, chosen.rsa_selector.encode(), domain.encode(), chosen.rsa_pem,
            canonicalize=(b"relaxed", b"relaxed"), include_headers=include,
            signature_algorithm=b"rsa-sha256",
        )
        ed_sig = dkim.sign(
            message, chosen.ed25519_selector.encode(), domain.encode(),
            base64.b64encode(ed_raw), canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include, signature_algorithm=b"ed25519-sha256",
        )
    except dkim.DKIMException as exc:
        raise DkimError(f"cannot sign: {exc}") from exc
    if not isinstance(ed_sig, bytes) or not isinstance(rsa_sig, bytes):
        raise DkimError("signer returned no header")
    return ed_sig + rsa_sig + message


# --- verification -------------------------------------------------------------------

TxtLookup = Callable[[str], "str | bytes | None"]


class DictTxtLookup:
    """A TXT lookup answering from a mapping (names with or without final dot)."""

    def __init__(self, records: Mapping[str, str]) -> None:
        """Build from ``{owner: value}``, e.g. the output of :func:`txt_records`."""
        self._records = {k.lower().rstrip("."): v for k, v in records.items()}

    def __call__(self, name: str) -> str | None:
        """Return the TXT value of ``name`` or None."""
        return self._records.get(name.lower().rstrip("."))


@dataclass(frozen=True, slots=True)
class SignatureResult:
    """Outcome of one DKIM-Signature (RFC 8601 2.7.1 result names).

    Attributes:
        result: pass | fail | neutral | temperror | permerror.
        domain: ``d=``; selector: ``s=``; algorithm: ``a=``; b: start of ``b=``.
        reason: short explanation, no message content.
    """

    result: str
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    b: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DkimResult:
    """All signatures of a message; :attr:`result` summarises them."""

    signatures: tuple[SignatureResult, ...]

    @property
    def result(self) -> str:
        """``none`` if unsigned, ``pass`` if any passes, else the most telling failure."""
        if not self.signatures:
            return "none"
        results = {s.result for s in self.signatures}
        for name in ("pass", "fail", "permerror", "temperror", "neutral"):
            if name in results:
                return name
        return "neutral"


def verify(message: bytes, dns_lookup: TxtLookup) -> DkimResult:
    """Verify every DKIM-Signature of ``message``.

    Args:
        message: the message as received.
        dns_lookup: ``name -> TXT text or None``; may raise :class:`TempDnsError`.

    Returns:
        One :class:`SignatureResult` per signature, in header order.
    """
    try:
        checker = dkim.DKIM(message, minkey=1024)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    except (dkim.DKIMException, IndexError):
        # dkimpy's header parser raises IndexError when the first line is a continuation
        # (starts with a space or tab): unparsable as well (found by fuzzing).
        return DkimResult((SignatureResult("permerror", reason="unparsable message"),))
    results = []
    for idx in range(count):
        state: dict[str, str] = {}

        def dnsfunc(name: bytes, timeout: float = 5, _state: dict[str, str] = state) -> bytes:
            text = name.decode("ascii", "replace")
            try:
                value = dns_lookup(text)
            except TempDnsError as exc:
                _state["dns"] = "temperror"
                raise dkim.DnsTimeoutError(str(exc)) from exc
            if value is None:
                _state["dns"] = "nokey"
                return b""
            return value.encode("ascii", "replace") if isinstance(value, str) else value

        tags: Mapping[bytes, bytes] = {}
        try:
            ok = checker.verify(idx=idx, dnsfunc=dnsfunc)
            tags = checker.signature_fields or {}
            reason = "" if ok else "signature did not verify"
        except dkim.DKIMException as exc:
            ok = False
            tags = getattr(checker, "signature_fields", None) or {}
            reason = type(exc).__name__
            state.setdefault("dns", "permerror" if not isinstance(exc, dkim.ValidationError)
                             else "fail")
        if ok:
            result = "pass"
        elif state.get("dns") == "temperror":
            result, reason = "temperror", "key lookup failed temporarily"
        elif state.get("dns") == "nokey":
            result, reason = "permerror", "no key for signature"
        elif state.get("dns") == "permerror":
            result = "permerror"
        else:
            result = "fail"
        results.append(SignatureResult(
            result=result,
            domain=tags.get(b"d", b"").decode("ascii", "replace"),
            selector=tags.get(b"s", b"").decode("ascii", "replace"),
            algorithm=tags.get(b"a", b"").decode("ascii", "replace"),
            b="".join(tags.get(b"b", b"").decode("ascii", "replace").split())[:8],
            reason=reason,
        ))
        checker.signature_fields = {}
    return DkimResult(tuple(results))


def _ptext(value: str) -> str:
    # RFC 8601 2.2: values are "value" (token or quoted-string).
    if value and all(c.isalnum() or c in "-._+/=@" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authentication_results(authserv_id: str, results: DkimResult) -> str:
    """Value of an Authentication-Results header (RFC 8601 2.2, RFC 6008 header.b).

    Example: ``mx.example.fr; dkim=pass header.d=example.fr header.s=s1-rsa
    header.a=rsa-sha256 header.b=AbCdEfGh``.
    """
    if not results.signatures:
        return f"{authserv_id}; dkim=none"
    parts = [authserv_id]
    for sig in results.signatures:
        item = f"dkim={sig.result}"
        if sig.reason and sig.result != "pass":
            item += f" reason={_ptext(sig.reason)}"
        for prop, value in (("header.d", sig.domain), ("header.s", sig.selector),
                            ("header.a", sig.algorithm), ("header.b", sig.b)):
            if value:
                item += f" {prop}={_ptext(value)}"
        parts.append(item)
    return ";\r\n\t".join(parts)


class FailurePolicy(enum.Enum):
    """What to do with a message whose signatures fail (configuration)."""

    REJECT = "reject"
    MARK = "mark"


class DkimAction(enum.Enum):
    """Decision for the SMTP front end."""

    ACCEPT = "accept"
    MARK = "mark"  # accept, record the failure in Authentication-Results
    REJECT = "reject"  # 550 5.7.20 (RFC 7372)
    TEMPFAIL = "tempfail"  # 451 4.7.5, try again later


@dataclass(frozen=True, slots=True)
class DkimDecision:
    """Action and a log-safe reason."""

    action: DkimAction
    reason: str


def decide(result: DkimResult, policy: FailurePolicy) -> DkimDecision:
    """Map a verification result to an action under ``policy``.

    A message passes if any signature passes. Unsigned messages are accepted
    (DKIM is optional in the trust space). Under REJECT a failing or broken
    signature is refused, a temporary DNS error deferred; under MARK all are
    accepted and marked.
    """
    summary = result.result
    if summary in ("pass", "none"):
        return DkimDecision(DkimAction.ACCEPT, f"dkim={summary}")
    if policy is FailurePolicy.MARK:
        return DkimDecision(DkimAction.MARK, f"dkim={summary}")
    if summary == "temperror":
        return DkimDecision(DkimAction.TEMPFAIL, "dkim=temperror")
    return DkimDecision(DkimAction.REJECT, f"dkim={summary}")
