"""The IMAP server over real sockets and TLS, driven by Python's imaplib."""

from __future__ import annotations

import asyncio
import imaplib
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.conftest import INS, PASSWORD, add_patient

from .conftest import Imap, message

T = TypeVar("T")


async def run(fn: Callable[[], T]) -> T:
    """imaplib blocks: run it in a thread while the server runs on the test loop."""
    return await asyncio.to_thread(fn)


def connect(imap: Imap, login: bool = True) -> imaplib.IMAP4:
    m = imaplib.IMAP4(imap.host, imap.port)
    m.starttls(imap.tls)
    if login:
        m.login(imap.user, imap.password)
    return m


async def test_login_is_refused_before_tls(imap: Imap) -> None:
    def go() -> tuple[Any, ...]:
        m = imaplib.IMAP4(imap.host, imap.port)
        before = m.capabilities
        typ, data = m._simple_command("LOGIN", imap.user, imap.password)  # noqa: SLF001
        auth = m._simple_command("AUTHENTICATE", "PLAIN", "AGEAYg==")  # noqa: SLF001
        m.starttls(imap.tls)
        after = m.capabilities
        m.login(imap.user, imap.password)
        m.logout()
        return before, typ, m.untagged_responses, auth, after

    before, typ, _, auth, after = await run(go)
    assert "LOGINDISABLED" in before and "STARTTLS" in before
    assert not any(c.startswith("AUTH=") for c in before)
    assert typ == "NO" and auth[0] == "NO"
    assert "AUTH=PLAIN" in after and "LOGINDISABLED" not in after and "STARTTLS" not in after


async def test_implicit_tls_and_authenticate_plain(imap: Imap) -> None:
    def go() -> tuple[str, tuple[str, ...]]:
        m = imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=imap.tls)
        caps = m.capabilities
        typ, _ = m.authenticate("PLAIN", lambda _: f"\0{imap.user}\0{imap.password}".encode())
        m.logout()
        return typ, caps

    typ, caps = await run(go)
    assert typ == "OK" and "STARTTLS" not in caps and "AUTH=PLAIN" in caps


async def test_bad_password_and_patient_are_refused(imap: Imap) -> None:
    patient = await add_patient(imap.services, INS[0])
    await imap.services.directory.consume_provisional_code(patient.id, login_id="marie.d",
                                                           password=PASSWORD)

    def go() -> list[str]:
        m = connect(imap, login=False)
        out = []
        for user, pw in ((imap.user, "wrong-password"), ("marie.d", PASSWORD),
                         (patient.address, PASSWORD)):
            try:
                m.login(user, pw)
                out.append("OK")
            except imaplib.IMAP4.error as exc:
                out.append(str(exc))
        m.logout()
        return out

    bad, by_login, by_address = await run(go)
    assert "AUTHENTICATIONFAILED" in bad
    for text in (by_login, by_address):
        assert "patients use the secure webmail" in text


async def test_patient_probe_with_wrong_password_looks_unknown(imap: Imap) -> None:
    patient = await add_patient(imap.services, INS[0])
    await imap.services.directory.consume_provisional_code(patient.id, login_id="marie.d",
                                                           password=PASSWORD)

    def go() -> list[str]:
        m = connect(imap, login=False)
        out = []
        for user in (patient.address, "marie.d", f"{INS[1]}@{patient.address.split('@')[1]}"):
            try:
                m.login(user, "wrong-password")
                out.append("OK")
            except imaplib.IMAP4.error as exc:
                out.append(str(exc))
        m.logout()
        return out

    # Same answer as for a name nobody has: nothing tells that this INS has a mailbox.
    by_address, by_login, unknown = await run(go)
    assert by_address == by_login == unknown
    assert "AUTHENTICATIONFAILED" in unknown and "CONTACTADMIN" not in by_address


async def test_select_fetch_store_search_expunge(imap: Imap) -> None:
    st = imap.services.store
    for i in range(1, 6):
        await st.append(imap.account_id, "INBOX", message(i), flags=["\\Seen"] if i == 2 else [])

    def go() -> dict[str, Any]:
        m = connect(imap)
        r: dict[str, Any] = {}
        r["select"] = m.select("INBOX")
        r["responses"] = dict(m.untagged_responses)
        r["fast"] = m.fetch("1:*", "FAST")
        r["peek"] = m.fetch("3", "(BODY.PEEK[HEADER.FIELDS (Subject)] FLAGS)")
        r["partial"] = m.fetch("3", "(BODY[]<0.4> BODY[TEXT]<2.3>)")
        r["after"] = m.fetch("3", "(FLAGS)")
        r["uidfetch"] = m.uid("FETCH", "4:*", "(FLAGS)")
        r["store"] = m.store("1:2", "+FLAGS", "(\\Flagged $Label1)")
        r["silent"] = m.store("5", "+FLAGS.SILENT", "(\\Answered)")
        r["s_flagged"] = m.search(None, "FLAGGED")
        r["s_unseen"] = m.search(None, "UNSEEN")
        r["s_or"] = m.search(None, "OR", "SUBJECT", '"rendu 4"', "KEYWORD", "$Label1")
        r["s_utf8"] = m.search("UTF-8", "BODY", "Bonjour")
        r["s_bad"] = m._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")  # noqa: SLF001
        r["s_bad_text"] = m.untagged_responses.pop("BADCHARSET", None)
        r["uidsearch"] = m.uid("SEARCH", "UID", "2:4", "NOT", "DELETED")
        r["del"] = m.store("2,4", "+FLAGS", "(\\Deleted)")
        r["expunge"] = m.expunge()
        r["remaining"] = m.fetch("1:*", "(UID)")
        r["oob"] = m._simple_command("FETCH", "99", "FLAGS")  # noqa: SLF001
        m.close()
        m.logout()
        return r

    r = await run(go)
    assert r["select"] == ("OK", [b"5"])
    assert r["responses"]["UIDVALIDITY"] and r["responses"]["UIDNEXT"] == [b"6"]
    assert r["responses"]["UNSEEN"] == [b"1"]
    assert len(r["fast"][1]) == 5 and b"RFC822.SIZE" in r["fast"][1][0]
    assert r["peek"][1][0][1] == b"Subject: Compte rendu 3\r\n\r\n"
    assert b"\\Seen" not in r["peek"][1][1]
    raw = message(3)
    assert r["partial"][1][0][1] == raw[:4]
    assert r["partial"][1][1][1] == raw[raw.index(b"\r\n\r\n") + 4:][2:5]
    assert b"\\Seen" in r["after"][1][0]
    assert [re.search(rb"UID (\d+)", x).group(1) for x in r["uidfetch"][1]] == [b"4", b"5"]
    assert all(b"\\Flagged" in x and b"$Label1" in x for x in r["store"][1])
    assert r["silent"] == ("OK", [None])
    assert r["s_flagged"][1] == [b"1 2"]
    assert r["s_unseen"][1] == [b"1 4 5"]
    assert r["s_or"][1] == [b"1 2 4"]
    assert r["s_utf8"][1] == [b"1 2 3 4 5"]
    assert r["s_bad"][0] == "NO"
    assert r["uidsearch"][1] == [b"2 3 4"]
    assert r["expunge"][1] == [b"4", b"2"]  # highest first: each number valid when sent
    assert [re.search(rb"UID (\d+)", x).group(1) for x in r["remaining"][1]] == [b"1", b"3", b"5"]
    assert r["oob"][0] == "NO"


async def test_mailbox_management(imap: Imap) -> None:
    def go() -> dict[str, Any]:
        m = connect(imap)
        r: dict[str, Any] = {}
        r["create"] = m.create("Patients/Dupont")
        r["create_again"] = m.create("Patients/Dupont")
        r["create_utf7"] = m.create("&AMk-quipe")  # "Équipe" in modified UTF-7
        r["list"] = m.list()
        r["list_pct"] = m.list('""', "%")
        r["rename"] = m.rename("Patients/Dupont", "Patients/Durand")
        r["unsub"] = m.unsubscribe("Patients/Durand")
        r["lsub"] = m.lsub('""', "*")
        r["del_parent"] = m.delete("Patients")
        r["del_sent"] = m.delete("Sent")
        r["del_child"] = m.delete("Patients/Durand")
        r["del_missing"] = m.delete("Nope")
        r["select_missing"] = m.select("Nope")
        r["special"] = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")  # noqa: SLF001
        r["special_lines"] = m.untagged_responses.pop("LIST", [])
        r["namespace"] = m.namespace()
        r["status"] = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
        m.logout()
        return r

    r = await run(go)
    assert r["create"][0] == "OK"
    assert r["create_again"][0] == "NO" and b"ALREADYEXISTS" in r["create_again"][1][0]
    listed = b"\n".join(r["list"][1])
    assert b'(\\HasChildren) "/" Patients' in listed
    assert b'(\\HasNoChildren) "/" Patients/Dupont' in listed
    assert b"&AMk-quipe" in listed and b"\\Sent) \"/\" Sent" in listed
    assert not any(b"Patients/" in x for x in r["list_pct"][1])
    assert r["rename"][0] == "OK"
    assert not any(b"Durand" in x for x in r["lsub"][1]) and any(b"INBOX" in x
                                                                 for x in r["lsub"][1])
    assert r["del_parent"][0] == "NO" and r["del_sent"][0] == "NO"
    assert r["del_child"][0] == "OK"
    assert r["del_missing"][0] == "NO" and b"NONEXISTENT" in r["del_missing"][1][0]
    assert r["select_missing"][0] == "NO"
    assert len(r["special_lines"]) == 5
    assert r["namespace"][1] == [b'(("" "/")) NIL NIL']
    assert re.match(rb"INBOX \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+\)",
                    r["status"][1][0])


async def test_append_copy_move_uidplus(imap: Imap) -> None:
    def go() -> dict[str, Any]:
        m = connect(imap)
        r: dict[str, Any] = {}
        r["append"] = m.append("INBOX", "(\\Seen)", '"01-Feb-2026 10:00:00 +0100"', message(1))
        r["append2"] = m.append("INBOX", None, None, message(2))
        r["append_missing"] = m.append("Nope", None, None, message(3))
        m.select("INBOX")
        r["internal"] = m.fetch("1", "(INTERNALDATE FLAGS)")
        r["copy"] = m.copy("1:2", "Archive")
        r["move"] = m._simple_command("MOVE", "1", "Trash")  # noqa: SLF001
        r["move_untagged"] = m.untagged_responses.pop("EXPUNGE", [])
        r["uid_move"] = m.uid("MOVE", "2", "Junk")
        r["left"] = m.select("INBOX")
        r["archive"] = m.select("Archive")
        r["uid_expunge_flags"] = m.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)")
        m.uid("EXPUNGE", "1")
        r["uid_expunge"] = m.untagged_responses.pop("EXPUNGE", [])
        r["archive_left"] = m.uid("SEARCH", "ALL")
        m.logout()
        return r

    r = await run(go)
    assert re.match(rb"\[APPENDUID \d+ 1\]", r["append"][1][0])
    assert re.match(rb"\[APPENDUID \d+ 2\]", r["append2"][1][0])
    assert r["append_missing"][0] == "NO" and b"TRYCREATE" in r["append_missing"][1][0]
    assert b'INTERNALDATE " 1-Feb-2026 09:00:00 +0000"' in r["internal"][1][0]
    assert re.match(rb"\[COPYUID \d+ 1:2 1:2\]", r["copy"][1][0])
    assert r["move"][0] == "OK" and r["move_untagged"] == [b"1"]
    assert r["uid_move"][0] == "OK"
    assert r["left"] == ("OK", [b"0"])
    assert r["archive"] == ("OK", [b"2"])
    assert r["uid_expunge"] == [b"1"]
    assert r["archive_left"][1] == [b"2"]


async def test_append_to_sent_after_smtp_copy_is_not_duplicated(imap: Imap) -> None:
    st = imap.services.store
    raw = message(7, msgid="<sent-once@hopital.mssante.test>")
    first = await st.append(imap.account_id, "Sent", raw, flags=["\\Seen"],
                            message_id="<sent-once@hopital.mssante.test>")

    def go() -> tuple[Any, Any, Any]:
        m = connect(imap)
        again = m.append("Sent", "(\\Seen)", None, raw)
        other = m.append("Sent", "(\\Seen)", None, message(8))
        m.select("Sent")
        n = m.search(None, "ALL")
        m.logout()
        return again, other, n

    again, other, n = await run(go)
    assert again[0] == "OK" and f" {first.uid}]".encode() in again[1][0]
    assert other[0] == "OK"
    assert n[1] == [b"1 2"]


async def test_examine_is_read_only_and_condstore(imap: Imap) -> None:
    st = imap.services.store
    await st.append(imap.account_id, "INBOX", message(1))
    await st.append(imap.account_id, "INBOX", message(2))

    def go() -> dict[str, Any]:
        m = connect(imap)
        r: dict[str, Any] = {}
        r["examine"] = m.select("INBOX", readonly=True)
        r["ro"] = m.untagged_responses.get("READ-ONLY")
        r["store"] = m._simple_command("STORE", "1", "+FLAGS", "(\\Seen)")  # noqa: SLF001
        r["body"] = m.fetch("1", "(BODY[TEXT])")
        r["flags"] = m.fetch("1", "(FLAGS)")
        m.unselect()
        r["enable"] = m._simple_command("ENABLE", "CONDSTORE")  # noqa: SLF001
        m.select("INBOX")
        r["hms"] = m.untagged_responses.get("HIGHESTMODSEQ")
        r["modseq"] = m.fetch("1:2", "(MODSEQ)")
        ms1 = int(re.search(rb"MODSEQ \((\d+)\)", r["modseq"][1][0]).group(1))
        r["cond"] = m._simple_command("STORE", "1", f"(UNCHANGEDSINCE {ms1 - 1})",  # noqa: SLF001
                                      "+FLAGS", "(\\Flagged)")
        r["cond_ok"] = m._simple_command("STORE", "2", f"(UNCHANGEDSINCE {ms1 + 5})",  # noqa: SLF001
                                         "+FLAGS", "(\\Flagged)")
        m.untagged_responses.pop("FETCH", None)  # imaplib keeps STORE's FETCH lines
        r["changed"] = m.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {ms1})")
        r["search_modseq"] = m.search(None, "MODSEQ", str(ms1 + 1))
        m.logout()
        return r

    r = await run(go)
    assert r["store"][0] == "NO"
    assert b"\\Seen" not in r["flags"][1][0]
    assert r["hms"] and int(r["hms"][0]) > 0
    assert r["cond"][0] == "OK" and b"[MODIFIED 1]" in r["cond"][1][0]
    assert r["cond_ok"][0] == "OK"
    assert len(r["changed"][1]) == 1 and r["changed"][1][0].startswith(b"2 (")
    assert re.match(rb"2 \(MODSEQ \d+\)", r["search_modseq"][1][0])


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
async def test_both_ports_serve_a_session(imap: Imap, implicit: bool) -> None:
    await imap.services.store.append(imap.account_id, "INBOX", message(1))

    def go() -> tuple[str, list[Any]]:
        if implicit:
            m: imaplib.IMAP4 = imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=imap.tls)
            m.login(imap.user, imap.password)
        else:
            m = connect(imap)
        res = m.select("INBOX")
        m.logout()
        return res

    assert await run(go) == ("OK", [b"1"])
