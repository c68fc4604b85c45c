"""DKIM: key files, DNS records, sign/verify round trips, A-R header, policy."""

from __future__ import annotations

import os
import re
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from mailserver.dkim.signing import (
    DictTxtLookup,
    DkimAction,
    DkimError,
    DkimResult,
    FailurePolicy,
    KeyRotation,
    SelectorKeys,
    SignatureResult,
    TempDnsError,
    authentication_results,
    decide,
    dns_txt_records,
    generate_keys,
    load_keys,
    sign,
    txt_records,
    verify,
)

MSG = (
    b"From: Dr Martin <martin@medecin.example.fr>\r\n"
    b"To: 279035121518989@patient.example.fr\r\n"
    b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <abc@medecin.example.fr>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-MSS-MES: FIN\r\n"
    b"\r\n"
    b"Bonjour,\r\nvoici vos r\xc3\xa9sultats.\r\n"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SelectorKeys:
    return generate_keys(tmp_path_factory.mktemp("dkim"), "mss2026a")


@pytest.fixture(scope="module")
def lookup(keys: SelectorKeys) -> DictTxtLookup:
    return DictTxtLookup(dict(txt_records(keys, "medecin.example.fr")))


def test_key_files(tmp_path: Path) -> None:
    k = generate_keys(tmp_path, "s1")
    assert (tmp_path / "s1.rsa.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "s1.ed25519.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert load_keys(tmp_path, "s1") == k
    with pytest.raises(FileExistsError):
        generate_keys(tmp_path, "s1")
    os.chmod(tmp_path / "s1.rsa.pem", 0o600)
    (tmp_path / "s1.rsa.pem").write_bytes(k.ed25519_pem)
    with pytest.raises(DkimError):
        load_keys(tmp_path, "s1")


def test_dns_records(keys: SelectorKeys) -> None:
    records = dict(txt_records(keys, "medecin.example.fr"))
    assert set(records) == {"mss2026a-rsa._domainkey.medecin.example.fr.",
                            "mss2026a-ed._domainkey.medecin.example.fr."}
    assert records["mss2026a-ed._domainkey.medecin.example.fr."].startswith(
        "v=DKIM1; k=ed25519; p=")
    lines = dns_txt_records(keys, "medecin.example.fr")
    assert len(lines) == 2
    for line in lines:
        strings = re.findall(r'"([^"]*)"', line)
        assert all(len(s) <= 255 for s in strings)
        owner = line.split()[0]
        assert "".join(strings) == records[owner]
    rsa_line = next(line for line in lines if "k=rsa" in line)
    assert rsa_line.count('"') >= 4  # a 2048-bit key needs several strings


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_round_trip_each_algorithm(keys: SelectorKeys, lookup: DictTxtLookup,
                                   algorithm: str) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    result = verify(signed, lookup)
    by_alg = {s.algorithm: s for s in result.signatures}
    assert set(by_alg) == {"rsa-sha256", "ed25519-sha256"}
    assert by_alg[algorithm].result == "pass"
    assert by_alg[algorithm].domain == "medecin.example.fr"
    # Only this algorithm's key published: the other has no key.
    owner = next(k for k in lookup._records if ("-ed." in k) == algorithm.startswith("ed"))
    alone = DictTxtLookup({owner: lookup(owner) or ""})
    single = {s.algorithm: s.result for s in verify(signed, alone).signatures}
    assert single[algorithm] == "pass"
    assert [r for a, r in single.items() if a != algorithm] == ["permerror"]
    assert verify(signed, alone).result == "pass"


def test_signed_headers_cover_mss_and_mime(keys: SelectorKeys) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    parsed = message_from_bytes(signed, policy=default)
    sigs = parsed.get_all("DKIM-Signature")
    assert sigs is not None and len(sigs) == 2
    h = re.search(r"h=([^;]*);", " ".join(str(sigs[0]).split())).group(1)  # type: ignore[union-attr]
    names = {n.strip() for n in h.split(":")}
    assert {"from", "to", "subject", "date", "message-id", "content-type", "x-mss-mes",
            "in-reply-to", "references", "cc"} <= names


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: m.replace(b"vos r", b"nos r"), id="body"),
        pytest.param(lambda m: m.replace(b"Subject: =?utf-8?q?R=C3=A9sultats?=",
                                         b"Subject: Autre"), id="subject"),
        pytest.param(lambda m: m.replace(b"X-MSS-MES: FIN\r\n", b""), id="removed-mss-header"),
        pytest.param(lambda m: m.replace(b"MIME-Version", b"Cc: x@evil.example\r\nMIME-Version"),
                     id="added-cc"),
    ],
)
def test_tampering_fails(keys: SelectorKeys, lookup: DictTxtLookup, tamper: object) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    assert callable(tamper)
    result = verify(tamper(signed), lookup)
    assert [s.result for s in result.signatures] == ["fail", "fail"]
    assert result.result == "fail"


def test_relaxed_canonicalisation_survives_refolding(keys: SelectorKeys,
                                                    lookup: DictTxtLookup) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    refolded = signed.replace(b"Subject: =?utf-8?q?R=C3=A9sultats?=",
                              b"Subject:   =?utf-8?q?R=C3=A9sultats?=  ")
    assert verify(refolded, lookup).result == "pass"
    assert verify(signed.replace(b"\r\n", b"\n"), lookup).result == "pass"


def test_dns_errors(keys: SelectorKeys) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    assert verify(signed, DictTxtLookup({})).result == "permerror"

    def failing(name: str) -> str:
        raise TempDnsError("timeout")

    assert verify(signed, failing).result == "temperror"
    assert verify(MSG, failing).result == "none"


def test_rotation(tmp_path: Path) -> None:
    cur, nxt = generate_keys(tmp_path, "a"), generate_keys(tmp_path, "b")
    rot = KeyRotation(cur, nxt)
    lines = dns_txt_records(rot, "example.fr")
    assert [line.split()[0].split("._")[0] for line in lines] == ["a-rsa", "a-ed", "b-rsa", "b-ed"]
    signed = sign(MSG, "example.fr", rot)
    assert {s.selector for s in verify(signed, DictTxtLookup(
        dict(txt_records(cur, "example.fr")))).signatures} == {"a-rsa", "a-ed"}
    rotated = rot.rotate()
    assert rotated.signing == nxt and rotated.next is None
    lookup_b = DictTxtLookup(dict(txt_records(nxt, "example.fr")))
    assert verify(sign(MSG, "example.fr", rotated), lookup_b).result == "pass"
    with pytest.raises(DkimError):
        rotated.rotate()


def test_authentication_results_text(keys: SelectorKeys, lookup: DictTxtLookup) -> None:
    signed = sign(MSG, "medecin.example.fr", keys)
    value = authentication_results("mx.nous.fr", verify(signed, lookup))
    flat = " ".join(value.split())
    assert flat.startswith("mx.nous.fr; dkim=pass header.d=medecin.example.fr header.s=mss2026a-ed"
                           " header.a=ed25519-sha256 header.b=")
    assert ("; dkim=pass header.d=medecin.example.fr header.s=mss2026a-rsa "
            "header.a=rsa-sha256") in flat
    assert authentication_results("mx.nous.fr", DkimResult(())) == "mx.nous.fr; dkim=none"
    failed = DkimResult((SignatureResult("fail", "d.fr", "s", "rsa-sha256", "abc",
                                         "body hash mismatch"),))
    assert " ".join(authentication_results("mx", failed).split()) == (
        'mx; dkim=fail reason="body hash mismatch" header.d=d.fr header.s=s '
        "header.a=rsa-sha256 header.b=abc")
    # Parses as a header with the stdlib.
    parsed = message_from_bytes(
        f"Authentication-Results: {value}\r\n\r\n".encode(), policy=default)
    assert "dkim=pass" in str(parsed["Authentication-Results"])


@pytest.mark.parametrize(
    ("results", "policy", "action"),
    [
        (("pass",), FailurePolicy.REJECT, DkimAction.ACCEPT),
        ((), FailurePolicy.REJECT, DkimAction.ACCEPT),
        (("fail", "pass"), FailurePolicy.REJECT, DkimAction.ACCEPT),
        (("fail",), FailurePolicy.REJECT, DkimAction.REJECT),
        (("permerror",), FailurePolicy.REJECT, DkimAction.REJECT),
        (("temperror",), FailurePolicy.REJECT, DkimAction.TEMPFAIL),
        (("fail",), FailurePolicy.MARK, DkimAction.MARK),
        (("temperror",), FailurePolicy.MARK, DkimAction.MARK),
        (("pass",), FailurePolicy.MARK, DkimAction.ACCEPT),
    ],
    ids=["pass", "unsigned", "one-passes", "fail-reject", "permerror-reject",
         "temperror-defer", "fail-mark", "temperror-mark", "pass-mark"],
)
def test_policy(results: tuple[str, ...], policy: FailurePolicy, action: DkimAction) -> None:
    result = DkimResult(tuple(SignatureResult(r) for r in results))
    assert decide(result, policy).action is action


def test_garbage_message_does_not_raise() -> None:
    out = verify(b"DKIM-Signature: v=1; a=zzz\r\n\r\nx", DictTxtLookup({}))
    assert out.result in {"permerror", "fail"}


def test_message_starting_with_a_continuation_line_is_unparsable() -> None:
    # dkimpy's parser raised IndexError on this (found by fuzzing the SMTP session).
    out = verify(b" folded\r\nFrom: a@b.test\r\n\r\nx", DictTxtLookup({}))
    assert out.result == "permerror"
