"""LIST / LSUB: pattern matching and mailbox attributes (RFC 3501 6.3.8, RFC 3348, RFC 6154),
and LIST-EXTENDED's selection (RFC 5258 3: SUBSCRIBED, RECURSIVEMATCH, SPECIAL-USE).

Pure functions over folder names; the hierarchy delimiter is ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from . import encoder as enc

__all__ = ["DELIMITER", "pattern_regex", "ListEntry", "list_entries", "lsub_entries",
           "list_line", "extended_entries", "SELECTION_OPTS", "RETURN_OPTS", "ListError"]

#: RFC 5258 3 (REMOTE: there are no remote mailboxes here), RFC 6154 3.
SELECTION_OPTS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
#: RFC 5258 3, RFC 6154 3, RFC 5819.
RETURN_OPTS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


class ListError(ValueError):
    """Options that RFC 5258 3 says to answer BAD."""

DELIMITER = "/"
_MAX_PATTERN = 1000


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """Compile ``reference`` + ``pattern`` (RFC 3501 6.3.8: ``*`` any, ``%`` no delimiter).

    INBOX matches case-insensitively (RFC 3501 5.1).
    """
    if pattern.startswith(DELIMITER) or not reference:
        full = pattern
    elif reference.endswith(DELIMITER):
        full = reference + pattern
    else:
        full = reference + DELIMITER + pattern
    full = full[:_MAX_PATTERN]
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    # "INBOX" in any case names the inbox.
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in "/*%"):
        body = "(?i:INBOX)" + "".join(out[5:])
    # collapse runs of wildcards to keep matching linear
    body = re.sub(r"(?:\.\*){2,}", ".*", body)
    return re.compile(body + r"\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One mailbox as LIST shows it."""

    name: str
    attributes: tuple[str, ...]
    #: RFC 5258 3.5: ``("CHILDINFO" ("SUBSCRIBED"))``: a descendant is subscribed.
    childinfo: bool = False


def list_entries(folders: Iterable[tuple[str, str | None, bool]], regexes: list[re.Pattern[str]],
                 *, subscribed_only: bool = False, special_only: bool = False,
                 show_subscribed: bool = False) -> list[ListEntry]:
    """Entries for ``(name, special_use, subscribed)`` triples matching any of ``regexes``.

    Attributes: ``\\HasChildren``/``\\HasNoChildren`` (RFC 3348), the special use
    (RFC 6154) and, when asked, ``\\Subscribed`` (RFC 5258).
    """
    items = list(folders)
    names = {n for n, _, _ in items}
    parents = {n.rsplit(DELIMITER, 1)[0] for n in names if DELIMITER in n}
    out: list[ListEntry] = []
    for name, special, subscribed in sorted(items, key=lambda t: (t[0] != "INBOX", t[0])):
        if subscribed_only and not subscribed:
            continue
        if special_only and not special:
            continue
        if not any(r.match(name) for r in regexes):
            continue
        attrs = ["\\HasChildren" if name in parents else "\\HasNoChildren"]
        if special:
            attrs.append(special)
        if show_subscribed and subscribed:
            attrs.append("\\Subscribed")
        out.append(ListEntry(name, tuple(attrs)))
    return out


def lsub_entries(folders: Iterable[tuple[str, str | None, bool]], orphans: Iterable[str],
                 regex: re.Pattern[str]) -> list[ListEntry]:
    """LSUB entries (RFC 3501 6.3.9): subscribed folders and subscribed names without a folder
    (``orphans``, RFC 3501 6.3.6) matching ``regex``.

    A subscribed name that does not match, but whose superior does (``q2/%`` with only
    ``q2/a/b`` subscribed), gives that superior with ``\\Noselect``: it is not subscribed
    itself, but leads to a subscribed name.
    """
    items = list(folders)
    subscribed = {n for n, _, sub in items if sub} | set(orphans)
    out = {e.name: e for e in list_entries(items, [regex], subscribed_only=True)}
    for name in sorted(subscribed - out.keys()):
        if regex.match(name):  # no folder: no attributes to tell (RFC 3501 6.3.9 example)
            out[name] = ListEntry(name, ())
    for name in sorted(subscribed):
        if regex.match(name):
            continue
        parts = name.split(DELIMITER)
        for i in range(len(parts) - 1, 0, -1):  # the deepest matching superior
            parent = DELIMITER.join(parts[:i])
            if regex.match(parent):
                if parent not in subscribed:
                    out[parent] = ListEntry(parent, ("\\Noselect", "\\HasChildren"))
                break
    return sorted(out.values(), key=lambda e: (e.name != "INBOX", e.name))


def list_line(verb: str, entry: ListEntry, *, utf8: bool = False) -> bytes:
    """``* LIST (attrs) "/" name``."""
    return (b"* " + verb.encode() + b" (" + " ".join(entry.attributes).encode() + b') "/" '
            + enc.mailbox(entry.name, utf8=utf8)
            + (b' ("CHILDINFO" ("SUBSCRIBED"))' if entry.childinfo else b"") + b"\r\n")


def extended_entries(folders: Iterable[tuple[str, str | None, bool]], orphans: Iterable[str],
                     regexes: list[re.Pattern[str]], selection: frozenset[str],
                     returns: frozenset[str]) -> list[ListEntry]:
    """LIST with RFC 5258 selection options over ``(name, special_use, subscribed)``.

    ``SUBSCRIBED`` lists subscribed names (``\\NonExistent`` when no folder has the name,
    RFC 5258 3.4); with ``RECURSIVEMATCH`` a matching name whose subscribed descendant does
    not match is listed too, with CHILDINFO.  ``SPECIAL-USE`` keeps special-use folders.

    Raises:
        ListError: an unknown option, or RECURSIVEMATCH alone (RFC 5258 3).
    """
    if selection - SELECTION_OPTS or returns - RETURN_OPTS:
        raise ListError("unknown LIST option")
    if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
        raise ListError("RECURSIVEMATCH needs another selection option")
    items = list(folders)
    subscribed_only = "SUBSCRIBED" in selection
    entries = list_entries(items, regexes, subscribed_only=subscribed_only,
                           special_only="SPECIAL-USE" in selection,
                           show_subscribed=subscribed_only or "SUBSCRIBED" in returns)
    if not subscribed_only:
        return entries
    out = {e.name: e for e in entries}
    existing = {n for n, _, _ in items}
    subscribed = {n for n, _, sub in items if sub} | set(orphans)
    for name in sorted(subscribed - existing):
        if any(r.match(name) for r in regexes):
            out[name] = ListEntry(name, ("\\NonExistent", "\\Subscribed"))
    if "RECURSIVEMATCH" in selection:
        for name in sorted(subscribed):
            if any(r.match(name) for r in regexes):
                continue
            parts = name.split(DELIMITER)
            for i in range(len(parts) - 1, 0, -1):
                parent = DELIMITER.join(parts[:i])
                if any(r.match(parent) for r in regexes):
                    old = out.get(parent)
                    attrs = old.attributes if old is not None else (
                        ("\\HasChildren",) if parent in existing else ("\\NonExistent",))
                    out[parent] = ListEntry(parent, attrs, childinfo=True)
                    break
    return sorted(out.values(), key=lambda e: (e.name != "INBOX", e.name))
