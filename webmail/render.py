"""Stored message bytes → what the patient sees (pure: no I/O, no aiohttp).

Theory of operation
-------------------
* Parsing uses the stdlib ``email`` package (policy ``default``); a malformed message still
  renders (as much as can be read), it never raises.
* The body is the HTML alternative when there is one (RFC 2046 5.1.4: the last alternative the
  reader understands), sanitised by nh3 (ammonia) with a strict allow-list: no scripts, styles,
  event handlers, forms, frames or ``style`` attributes; URLs only ``http``/``https``/``mailto``
  (and ``cid:``/``data:`` images). Plain text is escaped by Jinja2 (autoescape).
* Remote images are privacy leaks (read tracking): their ``src`` is replaced by a local
  placeholder unless the patient asked to show them. ``cid:`` images (RFC 2392) point to the
  message's own parts, served by the webmail.
* An image left without ``src`` (a refused URL, an unknown ``cid:``) is dropped: it would show
  nothing but a broken icon and, without ``alt``, is an accessibility failure (axe
  ``image-alt``); an image without ``alt`` gets ``alt=""``.
* Links keep their target but lose known tracking parameters (``utm_*``, ``fbclid``...); the
  page shows each link's target next to it (CSS), and links open with ``rel=noreferrer``.
* Attachments are every leaf part that is not the displayed body (nor its text alternative);
  they are numbered by their position in ``Message.walk()`` order, which is stable for the
  same bytes.
* A rendering is a frozen :class:`Rendered`; :func:`rendering_bytes` and
  :func:`rendering_from_bytes` turn it into JSON and back (the webmail keeps the renderings of
  opened messages, sealed, see ``webmail.mailbox.Mailbox.rendered``). :data:`RENDER_VERSION`
  names the renderer: change it whenever what this module produces for the same bytes changes.
* Hostile structure is bounded by the attachment readers' limits (:class:`attachments.Limits`,
  the same as the dossier bridge's): a message too big, or with more boundary lines than
  ``max_parts`` allows, is parsed for its headers only; the walk stops after ``max_parts``
  entities and does not enter containers nested deeper than ``max_depth``.
"""

from __future__ import annotations

import dataclasses
import email
import email.parser
import email.utils
import importlib.metadata
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

from attachments.limits import Limits

__all__ = ["Attachment", "Rendered", "render_message", "part_bytes", "sanitise_html",
           "strip_tracking", "BLOCKED_IMAGE", "parse_message", "body_text", "RENDER_VERSION",
           "rendering_bytes", "rendering_from_bytes"]

BLOCKED_IMAGE = "/static/image-bloquee.svg"

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p",
    "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "abbr": {"title"},
}
_TRACKING = re.compile(
    r"^(utm_.*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi|mkt_tok|"
    r"igshid|yclid|oly_enc_id|oly_anon_id|vero_id|__s|ref_src|trk|trkCampaign|sc_cid)$",
    re.IGNORECASE)


def strip_tracking(url: str) -> str:
    """``url`` without known tracking query parameters (utm_*, fbclid, gclid...)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def sanitise_html(html: str, *, show_images: bool = False,
                  cid_url: Callable[[str], str | None] | None = None) -> tuple[str, int]:
    """Sanitise an HTML mail body; returns (safe HTML fragment, number of blocked images)."""
    blocked = 0

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attr == "src":
            v = value.strip()
            if v.lower().startswith("cid:"):
                return cid_url(v[4:].strip("<>")) if cid_url else None
            if v.lower().startswith("data:image/") and not v.lower().startswith(
                    "data:image/svg"):
                return v
            if v.lower().startswith(("http://", "https://", "//")):
                if show_images:
                    return v
                blocked += 1
                return BLOCKED_IMAGE
            return None
        if tag == "a" and attr == "href":
            v = value.strip()
            if v.lower().startswith(("http://", "https://")):
                return strip_tracking(v)
            if v.lower().startswith("mailto:"):
                return v
            return None
        return value

    def relative(url: str) -> str | None:
        # Only our own rewritten URLs may be relative (cid images, the placeholder).
        return url if url.startswith(("/static/", "/conversations/")) else None

    safe = nh3.clean(
        html, tags=_TAGS, attributes=_ATTRIBUTES, attribute_filter=attribute_filter,
        url_schemes={"http", "https", "mailto", "cid", "data"}, url_relative=relative,
        link_rel="noopener noreferrer nofollow", strip_comments=True,
        clean_content_tags={"script", "style", "title", "head", "template", "textarea",
                            "iframe", "object", "embed", "noscript", "svg", "math"})
    return _fix_images(safe), blocked


# nh3's serialiser quotes every attribute value with '"' and escapes '"', '<' and '>' inside.
_IMG = re.compile(r'<img(?:\s+[\w:-]+(?:="[^"]*")?)*\s*/?>', re.IGNORECASE)
_HAS_SRC = re.compile(r'\ssrc="', re.IGNORECASE)
_HAS_ALT = re.compile(r'\salt="', re.IGNORECASE)


def _fix_images(safe: str) -> str:
    """Drop images without ``src``; give ``alt=""`` to images without ``alt``."""
    def fix(m: re.Match[str]) -> str:
        tag = m.group(0)
        if not _HAS_SRC.search(tag):
            return ""
        if not _HAS_ALT.search(tag):
            return '<img alt=""' + tag[4:]
        return tag

    return _IMG.sub(fix, safe)


@dataclass(frozen=True)
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    from_name: str
    from_address: str
    date: datetime | None
    html: str | None
    text: str | None
    attachments: tuple[Attachment, ...]
    blocked_images: int
    message_id: str
    references: tuple[str, ...]
    mdn_to: str
    fin: bool


RENDER_VERSION = (f"render-1/py{sys.version_info[0]}.{sys.version_info[1]}"
                  f"/nh3-{importlib.metadata.version('nh3')}")
"""Names what :func:`render_message` produces: this module's rules (bump the first number when
they change), the ``email`` package's (Python's version) and the sanitiser's (nh3's). A kept
rendering made by another version is not used (it is made again)."""


def rendering_bytes(r: Rendered) -> bytes:
    """``r`` as JSON (ASCII: a header's undecodable bytes survive as escapes)."""
    data = dataclasses.asdict(r)
    data["date"] = r.date.isoformat() if r.date is not None else None
    return json.dumps(data, separators=(",", ":")).encode()


def rendering_from_bytes(raw: bytes) -> Rendered:
    """The :class:`Rendered` that :func:`rendering_bytes` wrote."""
    data = json.loads(raw)
    data["date"] = datetime.fromisoformat(data["date"]) if data["date"] else None
    data["attachments"] = tuple(Attachment(**a) for a in data["attachments"])
    data["references"] = tuple(data["references"])
    return Rendered(**data)


LIMITS = Limits()
"""Bounds on the messages rendered (the attachment readers' defaults)."""
# As attachments.mime: boundary lines allowed per permitted part before the body is not parsed.
_DELIMITER_FACTOR = 4
_DELIMITER_SLACK = 1024


def _too_complex(raw: bytes, limits: Limits) -> bool:
    """Too big, or more boundary delimiters (RFC 2046 5.1.1) than ``max_parts`` allows: the
    parser's cost grows with every entity, so this is decided before parsing."""
    delimiters = raw.count(b"\n--") + raw.startswith(b"--")
    return len(raw) > limits.max_message_bytes \
        or delimiters > _DELIMITER_FACTOR * limits.max_parts + _DELIMITER_SLACK


def parse_message(raw: bytes, limits: Limits = LIMITS) -> EmailMessage:
    """The parsed message; its headers only when its structure exceeds ``limits``."""
    if not _too_complex(raw, limits):
        msg = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg
    msg = email.parser.BytesParser(policy=default_policy).parsebytes(raw, headersonly=True)
    assert isinstance(msg, EmailMessage)
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition"):
        del msg[name]
    msg.set_payload("")  # an empty text/plain body: nothing of the structure is read
    return msg


def _header(msg: Message, name: str) -> str:
    try:
        v = msg.get(name)
        return " ".join(str(v).split()) if v is not None else ""
    except Exception:  # noqa: BLE001 - malformed header reads as empty
        return ""


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown charset, bad encoding: decode by hand
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    name = (name or "").replace("/", "_").replace("\\", "_").strip()
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    if not name:
        ext = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg",
               "application/zip": ".zip"}.get(part.get_content_type(), ".bin")
        name = f"piece-jointe-{index}{ext}"
    return name[:200]


def _leaves(msg: Message, limits: Limits = LIMITS) -> list[tuple[int, Message]]:
    """(index in ``Message.walk()`` order, part) of the leaves, within ``limits``: at most
    ``max_parts`` entities, containers deeper than ``max_depth`` not entered. Iterative, so
    no nesting can exhaust the stack."""
    out: list[tuple[int, Message]] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    index = 0
    while stack and index < limits.max_parts:
        part, depth = stack.pop()
        if not part.is_multipart():
            out.append((index, part))
        elif depth < limits.max_depth:
            payload = part.get_payload()
            children = payload if isinstance(payload, list) else []
            stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
        index += 1
    return out


def _choose_body(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    """(html part, plain part) chosen for display."""
    try:
        html = msg.get_body(preferencelist=("html",))
        plain = msg.get_body(preferencelist=("plain",))
    except Exception:  # noqa: BLE001
        return None, None
    return html, plain


def render_message(raw: bytes, *, show_images: bool = False,
                   cid_url: Callable[[str], str | None] | None = None) -> Rendered:
    """Parse and sanitise a stored message for display."""
    msg = parse_message(raw)
    html_part, plain_part = _choose_body(msg)
    html: str | None = None
    text: str | None = None
    blocked = 0
    if html_part is not None:
        html, blocked = sanitise_html(_text_of(html_part), show_images=show_images,
                                      cid_url=cid_url)
    elif plain_part is not None:
        text = _text_of(plain_part)
    body_parts = {id(p) for p in (html_part, plain_part) if p is not None}
    attachments = []
    for index, part in _leaves(msg):
        if id(part) in body_parts:
            continue
        ctype = part.get_content_type()
        try:
            has_name = bool(part.get_filename())
        except Exception:  # noqa: BLE001
            has_name = False
        if ctype in ("text/plain", "text/html") and not has_name \
                and part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True)
        attachments.append(Attachment(index, _filename(part, index), ctype,
                                      len(payload) if isinstance(payload, bytes) else 0,
                                      _header(part, "Content-ID").strip("<>")))
    frm = _header(msg, "From")
    pairs = email.utils.getaddresses([frm]) if frm else []
    name, addr = pairs[0] if pairs else ("", "")
    date = None
    try:
        date = email.utils.parsedate_to_datetime(_header(msg, "Date")) if _header(
            msg, "Date") else None
    except (TypeError, ValueError):
        date = None
    msgids = re.findall(r"<[^<>\s]+>", _header(msg, "Message-ID"))
    refs = re.findall(r"<[^<>\s]+>", _header(msg, "References"))
    return Rendered(
        subject=_header(msg, "Subject"), from_name=name, from_address=addr.lower(), date=date,
        html=html, text=text, attachments=tuple(attachments), blocked_images=blocked,
        message_id=msgids[0] if msgids else "", references=tuple(refs),
        mdn_to=_header(msg, "Disposition-Notification-To"),
        fin=_header(msg, "X-MSS-MES").upper() == "FIN")


def body_text(raw: bytes, limit: int = 100_000) -> str:
    """The words of a message's body, for search: the HTML part without its markup (what the
    patient reads) and the plain-text part; at most ``limit`` characters of each."""
    html_part, plain_part = _choose_body(parse_message(raw))
    texts = []
    if html_part is not None:
        markup = _text_of(html_part)[:4 * limit]
        texts.append(unescape(nh3.clean(markup, tags=set(), clean_content_tags={
            "script", "style", "title", "head", "template"}))[:limit])
    if plain_part is not None:
        texts.append(_text_of(plain_part)[:limit])
    return "\n".join(texts)


def part_bytes(raw: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """The decoded bytes of leaf part ``index`` (as numbered by :func:`render_message`)."""
    msg = parse_message(raw)
    for i, part in _leaves(msg):
        if i == index:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            return Attachment(i, _filename(part, i), part.get_content_type(), len(data),
                              _header(part, "Content-ID").strip("<>")), data
    return None
