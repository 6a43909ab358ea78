"""A bounded, DTD-free reader of small XML files (MAHNOB-HCI's ``session.xml``).

The files are parsed with :mod:`xml.parsers.expat` directly: a document type
declaration (hence any entity declaration, the vehicle of entity-expansion bombs and
external-entity reads) is refused as soon as the parser meets it, parameter entities
are never parsed, and the size of the file, the number of elements and their nesting
are bounded before anything is kept. Every failure is one
:class:`~physiosync.exceptions.DataFormatError` line naming the file.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import DataFormatError

__all__ = ["XmlElement", "read_small_xml", "MAX_XML_BYTES", "MAX_XML_ELEMENTS",
           "MAX_XML_DEPTH"]

#: Largest file read (a real ``session.xml`` holds a few kB).
MAX_XML_BYTES = 1 << 20
#: Most elements in one file, and deepest nesting.
MAX_XML_ELEMENTS = 10_000
MAX_XML_DEPTH = 16


@dataclass
class XmlElement:
    """One element: its tag, attributes and child elements (text is not kept)."""

    tag: str
    attrs: dict
    children: list = field(default_factory=list)

    def find(self, tag: str):
        """The first child element named *tag*, or None."""
        return next((c for c in self.children if c.tag == tag), None)


class _Refused(Exception):
    """Raised inside the expat handlers; becomes a DataFormatError naming the file."""


def read_small_xml(path, what: str) -> XmlElement:
    """Parse the XML file *path* into its root :class:`XmlElement`.

    Parameters
    ----------
    path : str | Path
        The file.
    what : str
        What the file should be, for the messages (``"MAHNOB-HCI's session.xml"``).

    Returns
    -------
    root : XmlElement

    Raises
    ------
    DataFormatError
        If the file is larger than :data:`MAX_XML_BYTES`, holds a document type
        declaration (DTD) or an entity declaration, more than :data:`MAX_XML_ELEMENTS`
        elements or deeper nesting than :data:`MAX_XML_DEPTH`, or is not well-formed XML.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_XML_BYTES:
        raise DataFormatError(f"{path}: {size} bytes, more than the {MAX_XML_BYTES} an XML "
                              f"file of this kind may hold; expected {what} (a few kB).")
    with open(path, "rb") as f:
        data = f.read(MAX_XML_BYTES + 1)
    if len(data) > MAX_XML_BYTES:  # grew since the size was taken
        raise DataFormatError(f"{path}: more than {MAX_XML_BYTES} bytes; expected {what}.")
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[XmlElement] = []
    found: list[XmlElement] = []

    def refuse_doctype(*_):
        raise _Refused("holds a document type declaration (<!DOCTYPE ...>), which is "
                       "refused (no DTDs or entities are read)")

    def refuse_entity(*_):
        raise _Refused("declares or references an entity, which is refused (no DTDs or "
                       "entities are read)")

    def start(tag, attrs):
        if len(found) >= MAX_XML_ELEMENTS:
            raise _Refused(f"holds more than {MAX_XML_ELEMENTS} elements")
        if len(stack) >= MAX_XML_DEPTH:
            raise _Refused(f"nests elements more than {MAX_XML_DEPTH} levels deep")
        element = XmlElement(tag, dict(attrs))
        found.append(element)
        if stack:
            stack[-1].children.append(element)
        stack.append(element)

    def end(tag):
        stack.pop()

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.SkippedEntityHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except _Refused as err:
        raise DataFormatError(f"{path}: {err}; expected {what}.") from None
    except (xml.parsers.expat.ExpatError, ValueError, UnicodeError) as err:
        raise DataFormatError(f"{path}: not well-formed XML ({err}); expected {what}.") \
            from None
    if not found:  # pragma: no cover - expat refuses a document without a root element
        raise DataFormatError(f"{path}: no XML element; expected {what}.")
    return found[0]
