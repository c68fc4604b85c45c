"""SORT (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD (ORDEREDSUBJECT, REFERENCES).

Pure: messages come in as :class:`Item` (sequence number, UID, arrival, size and the
:class:`~mailserver.imap.sortfields.SortFields` read from the sealed summary), results go out
as ordered items or thread trees; no I/O, no parsing of messages.

Comparisons use ``i;ascii-casemap`` (RFC 4790: ASCII letters folded, other octets as they
are); when every key is equal, sequence-number order decides (RFC 5256 3).  A message whose
sent date cannot be read sorts by its INTERNALDATE (RFC 5256 2.2).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .sortfields import SortFields

__all__ = ["Item", "SORT_KEYS", "sort_items", "Node", "thread_orderedsubject",
           "thread_references", "encode_threads", "casemap", "paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around one synchronous SORT/THREAD computation:
    the 100,000 tree nodes of a large mailbox otherwise trigger repeated full collections
    (about a third of THREAD's time).  The nodes are freed afterwards as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

def casemap(text: str) -> bytes:
    """``i;ascii-casemap`` key (RFC 4790 9.2): the UTF-8 octets with ASCII letters upper-cased
    (``bytes.upper`` touches nothing else), compared octet by octet."""
    return text.encode("utf-8", "surrogateescape").upper()


@dataclass(frozen=True, slots=True)
class Item:
    """One message as SORT and THREAD see it."""

    seq: int
    uid: int
    arrival: float
    size: int
    fields: SortFields

    @property
    def sent(self) -> float:
        """The sent date (UTC seconds), else the arrival date (RFC 5256 2.2)."""
        d = self.fields.date
        return self.arrival if d is None else d


_Key = Callable[[Item], Any]

#: RFC 5256 3 sort-key / RFC 5957 2 → the key function.
SORT_KEYS: dict[str, _Key] = {
    "ARRIVAL": lambda m: m.arrival,
    "DATE": lambda m: m.sent,
    "SIZE": lambda m: m.size,
    "FROM": lambda m: casemap(m.fields.from_addr),
    "TO": lambda m: casemap(m.fields.to_addr),
    "CC": lambda m: casemap(m.fields.cc_addr),
    "SUBJECT": lambda m: casemap(m.fields.subject),
    "DISPLAYFROM": lambda m: casemap(m.fields.from_display),
    "DISPLAYTO": lambda m: casemap(m.fields.to_display),
}


def sort_items(items: Iterable[Item], criteria: Sequence[tuple[str, bool]]) -> list[Item]:
    """Sort by ``(key, reverse)`` pairs, first pair most significant (RFC 5256 3).

    Stable sorts from the least significant key, starting from sequence order, so equal
    messages stay in sequence order and REVERSE applies to its own key only.
    """
    out = sorted(items, key=lambda m: m.seq)
    for name, reverse in reversed(criteria):
        out.sort(key=SORT_KEYS[name], reverse=reverse)
    return out


@dataclass(eq=False, slots=True)
class Node:
    """A thread tree node; ``item`` is None for a dummy (a message not in the result)."""

    item: Item | None = None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    def first(self) -> Item | None:
        """The node's message, or a dummy's first child's (after sorting)."""
        node: Node | None = self
        while node is not None and node.item is None:
            node = node.children[0] if node.children else None
        return None if node is None else node.item


def _date_key(node: Node) -> tuple[float, int]:
    m = node.item or node.first()
    return (0.0, 0) if m is None else (m.sent, m.seq)


def thread_orderedsubject(items: Iterable[Item]) -> list[Node]:
    """THREAD=ORDEREDSUBJECT (RFC 5256 3): messages grouped by base subject, each group's
    earliest message the parent of the others (siblings in date order); threads by date."""
    # Sequence numbers are unique: the tuples never compare their items.
    ordered = sorted((casemap(m.fields.subject), m.sent, m.seq, m) for m in items)
    roots: list[Node] = []
    current: Node | None = None
    subject: bytes | None = None
    for key, _, _, m in ordered:
        if current is None or key != subject:
            current, subject = Node(m), key
            roots.append(current)
        else:
            current.children.append(Node(m, parent=current))
    roots.sort(key=_date_key)
    return roots


def thread_references(items: Iterable[Item]) -> list[Node]:
    """THREAD=REFERENCES (RFC 5256 3): link by References/In-Reply-To, prune dummies, group
    the roots by base subject, sort every sibling set by sent date."""
    roots = _link(list(items))
    roots = _prune(roots)
    roots = _group_by_subject(roots)
    _sort_siblings(roots)
    return roots


def _reachable(start: Node, target: Node) -> bool:
    stack = [start]
    while stack:
        n = stack.pop()
        if n is target:
            return True
        stack.extend(n.children)
    return False


def _set_parent(child: Node, parent: Node) -> None:
    if child.parent is parent or child is parent or (
            child.children and _reachable(child, parent)):  # no loops (RFC 5256 3 1A)
        return
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _link(items: list[Item]) -> list[Node]:
    """Steps 1-3: one container per Message-ID (missing or duplicate IDs get their own)."""
    table: dict[str, Node] = {}
    nodes: list[Node] = []
    for m in sorted(items, key=lambda m: m.seq):
        mid = m.fields.message_id
        node = table.get(mid) if mid else None
        if node is None or node.item is not None:
            node = Node()
            if mid and mid not in table:
                table[mid] = node
        node.item = m
        nodes.append(node)
        prev: Node | None = None
        for ref in m.fields.references:  # 1B: link the references in order
            ref_node = table.get(ref)
            if ref_node is None:
                ref_node = table[ref] = Node()
            if prev is not None and ref_node.parent is None:
                _set_parent(ref_node, prev)
            prev = ref_node
        if prev is not None and prev is not node:  # 1C: the last reference is the parent
            _set_parent(node, prev)
        elif node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    everything = dict.fromkeys([*nodes, *table.values()])  # nodes hash by identity
    return [n for n in everything if n.parent is None]


def _preorder(roots: list[Node]) -> list[Node]:
    order: list[Node] = []
    stack = list(roots)
    while stack:
        n = stack.pop()
        order.append(n)
        stack.extend(n.children)
    return order


def _prune(roots: list[Node]) -> list[Node]:
    """Step 4: dummies without children go; a dummy's children take its place, except at the
    root when there are several of them.  Bottom-up without recursion (reference chains from
    hostile headers can be long)."""
    for n in reversed(_preorder(roots)):  # children before their parents
        if not n.children:
            continue
        kids: list[Node] = []
        for c in n.children:
            if c.item is not None:
                kids.append(c)
            else:
                kids.extend(c.children)  # already pruned
        for k in kids:
            k.parent = n
        n.children = kids
    out: list[Node] = []
    for r in roots:
        if r.item is None and len(r.children) == 1:
            r = r.children[0]
            r.parent = None
        if r.item is not None or r.children:
            out.append(r)
    return out


def _subject(node: Node) -> tuple[bytes, bool]:
    item = node.item if node.item is not None else (
        node.children[0].item if node.children else None)
    return (b"", False) if item is None else (casemap(item.fields.subject), item.fields.reply)


def _group_by_subject(roots: list[Node]) -> list[Node]:
    """Step 5: roots with the same base subject are gathered under one of them or a dummy."""
    table: dict[bytes, Node] = {}
    subjects = {r: _subject(r) for r in roots}  # nodes hash by identity
    for r in roots:  # 5B
        subj, reply = subjects[r]
        if not subj:
            continue
        old = table.get(subj)
        if old is None or (r.item is None and old.item is not None) or (
                old.item is not None and subjects[old][1] and not reply
                and r.item is not None):
            table[subj] = r
    out: list[Node] = []
    where: dict[Node, int] = {}
    for r in roots:  # 5C
        if r.parent is not None:  # already merged under another root
            continue
        subj, reply = subjects[r]
        old = table.get(subj) if subj else None
        if old is None or old is r:
            where[r] = len(out)
            out.append(r)
        elif old.item is None and r.item is None:
            for c in r.children:
                c.parent = old
            old.children.extend(r.children)
        elif old.item is None or (reply and not subjects[old][1]):
            r.parent = old
            old.children.append(r)
        else:
            dummy = Node(children=[old, r])
            old.parent = r.parent = dummy
            table[subj] = dummy
            pos = where.pop(old, None)
            if pos is None:
                pos = len(out)
                out.append(dummy)
            out[pos] = dummy
            where[dummy] = pos
    return out


def _sort_siblings(roots: list[Node]) -> None:
    """Step 6: every sibling set by sent date (children first, so a dummy sorts by its
    earliest child), then the roots."""
    for n in reversed(_preorder(roots)):
        if len(n.children) > 1:
            n.children.sort(key=_date_key)
    roots.sort(key=_date_key)


def _members(node: Node, uid: bool) -> str:
    parts: list[str] = []
    while True:
        if node.item is not None:
            parts.append(str(node.item.uid if uid else node.item.seq))
        if len(node.children) == 1 and node.item is not None:
            node = node.children[0]
            continue
        if node.children:
            parts.append("".join(f"({_members(c, uid)})" for c in node.children))
        return " ".join(parts)


def encode_threads(roots: Sequence[Node], *, uid: bool) -> bytes:
    """``thread-list``s for ``* THREAD`` (RFC 5256 4), numbers as UIDs or sequence numbers."""
    return "".join(f"({_members(r, uid)})" for r in roots).encode("ascii")
