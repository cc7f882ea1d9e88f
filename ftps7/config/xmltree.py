"""A small, safe XML reader that remembers the line of every element.

ElementTree forgets line numbers, and every configuration message must name
one, so we drive expat ourselves and build plain nodes. A configuration file
has no business declaring a DOCTYPE or entities: they are how XML bombs
(billion laughs) and external-entity reads are built, so they are refused
outright instead of being "safely" expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat


@dataclass
class XmlElement:
    """One element: its tag, attributes in document order, line, children and text."""

    tag: str
    attrs: dict[str, str]
    line: int
    children: list[XmlElement] = field(default_factory=list)
    text: str = ""


class XmlError(Exception):
    """The bytes are not an acceptable XML document (``line`` is where it went wrong)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _RefusedError(Exception):
    """Raised from inside expat callbacks; carries the line of the refused construct."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_xml(data: bytes) -> XmlElement:
    """Parse ``data`` into a tree of `XmlElement`; raise `XmlError` when it is not usable."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.ordered_attributes = False
    # Never read external DTD subsets or parameter entities, whatever the document says.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    root: list[XmlElement] = []
    stack: list[XmlElement] = []

    def refuse(message: str) -> None:
        raise _RefusedError(parser.CurrentLineNumber, message)

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = XmlElement(tag, dict(attrs), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def doctype(name: str, *args: object) -> None:
        refuse(f"a DOCTYPE declaration (<!DOCTYPE {name}>) is not allowed in a configuration file")

    def entity(name: str, *args: object) -> None:
        refuse(f"an entity declaration ({name}) is not allowed in a configuration file")

    def external(*args: object) -> int:
        refuse("external entity references are not allowed in a configuration file")
        return 0  # pragma: no cover - refuse() raises

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    try:
        parser.Parse(data, True)
    except _RefusedError as refused:
        raise XmlError(refused.line, refused.message) from None
    except expat.ExpatError as error:
        raise XmlError(
            error.lineno, f"not well-formed XML: {expat.ErrorString(error.code)}"
        ) from None
    if not root:  # pragma: no cover - expat reports "no element found" first
        raise XmlError(1, "not well-formed XML: no element found")
    return root[0]
