"""Safe XML parsing for untrusted CDA and ebRIM documents.

Neither CDA R2 nor the ebRIM SubmitObjectsRequest ever needs a DTD, so any DOCTYPE, entity
declaration or external reference is refused outright (defusedxml with every `forbid_*` flag): this
closes XXE, billion laughs / quadratic blow-up and network access in one rule. The expat-based
parser never touches the network.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from attachments.limits import Limits, Reason, Refusal

__all__ = ["parse_xml", "child", "children", "attr", "text_of"]


def parse_xml(data: bytes, limits: Limits) -> Element | Refusal:
    """Parse `data` into an ElementTree element, or return why it was refused.

    Args:
        data: the XML bytes (any encoding declared in the prolog).
        limits: `max_xml_bytes` bounds the input.

    Returns:
        The root element, or a `Refusal` (XML_TOO_LARGE, XML_FORBIDDEN, XML_MALFORMED).
    """
    if len(data) > limits.max_xml_bytes:
        return Refusal(Reason.XML_TOO_LARGE, f"XML exceeds {limits.max_xml_bytes} bytes")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        return Refusal(Reason.XML_FORBIDDEN, f"forbidden XML construct ({type(exc).__name__})")
    except (ParseError, ValueError, LookupError, RecursionError, UnicodeError):
        return Refusal(Reason.XML_MALFORMED, "XML is not well-formed")
    if not isinstance(root, Element):
        return Refusal(Reason.XML_MALFORMED, "XML has no root element")
    return root


def child(node: Element | None, tag: str) -> Element | None:
    """First direct child with the (Clark-notation) `tag`, or None."""
    if node is None:
        return None
    return node.find(tag)


def children(node: Element | None, tag: str) -> list[Element]:
    """Direct children with the (Clark-notation) `tag`."""
    if node is None:
        return []
    return node.findall(tag)


def attr(node: Element | None, name: str) -> str | None:
    """Attribute value stripped of surrounding space; None when absent or empty."""
    if node is None:
        return None
    value = node.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def text_of(node: Element | None) -> str:
    """All text inside `node`, whitespace collapsed."""
    if node is None:
        return ""
    return " ".join("".join(node.itertext()).split())
