"""Property tests of the pure rendering layer: never raises, never lets script through."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from webmail.render import part_bytes, render_message, sanitise_html, strip_tracking

_FRAGMENTS = st.sampled_from([
    "<script>", "</script>", "<img src=x onerror=alert(1)>", "<a href='javascript:x'>",
    "<svg onload=1>", "<style>", "</style>", "<iframe>", "<!--", "-->", "<p>", "</p>",
    "<b>", "<table><tr><td>", "\"", "'", ">", "<", "=", " on", "error", "java", "script:",
    "<a href=\"https://e.example/?utm_source=x\">", "<math>", "<noscript>", "&lt;", "&#x3c;",
    "texte", "<img src='https://t.example/p.gif'>", "<base href=x>", "<form>",
])
_ALLOWED_TAGS = {"a", "b", "p", "img", "table", "tbody", "tr", "td", "html", "body", "div",
                 "span"}


def _active(fragment: str) -> list[str]:
    """What a browser could execute in ``fragment``: parsed as HTML, not pattern-matched."""
    import lxml.html

    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag not in _ALLOWED_TAGS:
            found.append(el.tag)
        for name, value in el.attrib.items():
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                found.append(name)
            if re.match(r"\s*(javascript|vbscript|data:text)", value, re.IGNORECASE):
                found.append(value)
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40))
def test_sanitised_html_has_no_active_content(parts: list[str]) -> None:
    for show in (False, True):
        safe, _ = sanitise_html("".join(parts), show_images=show)
        assert not _active(safe), safe


_IMG_FRAGMENTS = st.sampled_from([
    "<img>", "<img src='javascript:alert(1)'>", "<img src='cid:inconnu'>", "<img alt='x'>",
    "<img src='https://t.example/p.gif'>", "<img src='data:image/png;base64,AAAA'>",
    "<img src='cid:logo' alt='Logo'>", "<img title='a>b' src='x'>", "<p>", "texte", "\"",
    "<img src=\"data:image/svg+xml,<svg>\">",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_IMG_FRAGMENTS, max_size=20))
def test_every_image_left_has_src_and_alt(parts: list[str]) -> None:
    """Issue 9 item 26: an <img> stripped of its src is dropped (axe image-alt, critical)."""
    import lxml.html

    for show in (False, True):
        safe, _ = sanitise_html("".join(parts), show_images=show,
                                cid_url=lambda c: "/conversations/1/messages/2/pieces/3"
                                if c == "logo" else None)
        if not safe.strip():
            continue
        root = lxml.html.fragment_fromstring(safe, create_parent="div")
        for img in root.iter("img"):
            assert img.get("src") and img.get("alt") is not None, safe


def test_image_without_src_is_dropped_and_alt_is_kept() -> None:
    safe, _ = sanitise_html("<p>a<img src='javascript:x'>b<img src='cid:x'>"
                            "<img src='data:image/png;base64,AAAA' alt='Courbe'></p>")
    assert safe == '<p>ab<img src="data:image/png;base64,AAAA" alt="Courbe"></p>'


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_render_never_raises_on_garbage(raw: bytes) -> None:
    rendered = render_message(raw)
    for att in rendered.attachments:
        found = part_bytes(raw, att.index)
        assert found is not None and found[0].filename == att.filename


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_render_never_raises_on_header_soup(text: str) -> None:
    raw = ("Content-Type: multipart/mixed; boundary=b\r\nSubject: " + text
           + "\r\n\r\n--b\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n" + text
           + "\r\n--b--\r\n").encode("utf-8", "surrogateescape")
    render_message(raw)


@given(st.dictionaries(st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid", "id",
                                        "page"]), st.text(
    alphabet="abc123", min_size=1, max_size=5), max_size=6))
def test_strip_tracking_keeps_only_real_parameters(params: dict[str, str]) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    url = "https://e.example/p?" + urlencode(params)
    kept = parse_qs(urlsplit(strip_tracking(url)).query)
    assert set(kept) == {k for k in params if k in ("id", "page")}


def _multipart(leaves: int) -> bytes:
    parts = "".join("--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;"
                    f" filename=f{i}.pdf\r\n\r\nx\r\n" for i in range(leaves))
    return (f"Subject: Pièces\r\nFrom: dr@hopital.example\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=b\r\n\r\n{parts}--b--\r\n").encode()


def test_render_walks_within_the_attachment_limits() -> None:
    from attachments.limits import Limits

    limits = Limits()
    shown = render_message(_multipart(limits.max_parts + 50)).attachments
    assert 0 < len(shown) < limits.max_parts  # the walk stops at max_parts entities
    assert part_bytes(_multipart(limits.max_parts + 50), limits.max_parts + 10) is None
    # Far more boundaries than max_parts allows: headers only, nothing of the body is parsed.
    hostile = render_message(_multipart(20 * limits.max_parts))
    assert hostile.subject == "Pièces" and hostile.attachments == ()
    # Containers nested deeper than max_depth are not entered.
    depth = limits.max_depth + 2
    raw = "Subject: profond\r\nMIME-Version: 1.0\r\n" + "".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(depth))
    raw += "Content-Type: application/pdf\r\n\r\nx\r\n" + "".join(
        f"--b{i}--\r\n" for i in reversed(range(depth)))
    assert render_message(raw.encode()).attachments == ()
    assert len(render_message(_multipart(3)).attachments) == 3
