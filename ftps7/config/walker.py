"""Validate a parsed XML tree against the schema, producing typed nodes.

The walker checks every element and attribute name against ``schema.py``,
parses every value with its type, and records collection operations
(``<add>``/``<remove>``/``<clear/>``) in document order without applying them:
applying is the builder's job, because a site's collection is applied on top of
the one inherited from siteDefaults. Every problem goes to the `Problems` sink
and the walk continues, so one run reports all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ftps7.config.errors import Problems
from ftps7.config.schema import NO_DEFAULT, Attr, Collection, Element
from ftps7.config.values import BadValueError, ValueContext
from ftps7.config.xmltree import XmlElement

ADD, REMOVE, CLEAR = "add", "remove", "clear"


@dataclass
class Node:
    """A validated element: parsed values of the attributes it sets, its children, its ops."""

    spec: Element
    path: str  # element path for messages
    line: int
    values: dict[str, Any] = field(default_factory=dict)  # attribute name -> parsed value
    raw: dict[str, str] = field(default_factory=dict)  # attribute name -> text as written
    children: dict[str, Node] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    ok: bool = True  # False when one of this element's own attributes was refused

    def entry_values(self) -> dict[str, Any]:
        """Values of a collection entry, with the schema's entry defaults filled in."""
        values: dict[str, Any] = {}
        for attr in self.spec.attrs:
            if attr.name in self.values:
                values[attr.name] = self.values[attr.name]
            elif attr.default is not NO_DEFAULT:
                values[attr.name] = attr.default
        return values


@dataclass
class Op:
    kind: str  # ADD, REMOVE or CLEAR
    node: Node


class Walker:
    def __init__(self, problems: Problems, base_dir: str, environ: Mapping[str, str]) -> None:
        self.problems = problems
        self.base_dir = base_dir
        self.environ = environ

    # -- entry point ---------------------------------------------------------

    def walk_document(self, root: XmlElement, spec: Element) -> Node | None:
        if root.tag != spec.name:
            self.problems.error(
                root.line,
                root.tag,
                f"the root element must be <{spec.name}>",
                accepted=(spec.name,),
            )
            return None
        return self.walk(root, spec, spec.name)

    # -- elements ------------------------------------------------------------

    def walk(self, xml: XmlElement, spec: Element, path: str) -> Node:
        node = Node(spec, path, xml.line)
        self._attributes(xml, spec, node)
        self._text(xml, node)
        collection = spec.collection
        for child in xml.children:
            if collection is not None and child.tag == collection.entry.name:
                entry = self.walk(child, collection.entry, f"{path}/{_segment(child, collection)}")
                node.ops.append(Op(ADD, entry))
            elif collection is not None and collection.removable and child.tag == REMOVE:
                node.ops.append(Op(REMOVE, self._remove(child, collection, path)))
            elif collection is not None and collection.removable and child.tag == CLEAR:
                node.ops.append(Op(CLEAR, self._clear(child, collection, path)))
            elif (child_spec := spec.child(child.tag)) is not None:
                if child.tag in node.children:
                    self.problems.error(
                        child.line,
                        path,
                        f"element <{child.tag}> appears more than once "
                        f"(first at line {node.children[child.tag].line})",
                    )
                    continue
                node.children[child.tag] = self.walk(child, child_spec, f"{path}/{child.tag}")
            elif child.tag in spec.ignored_children:
                self.problems.warn(
                    child.line,
                    f"{path}/{child.tag}",
                    f"element <{child.tag}> is {spec.ignored_children[child.tag]}",
                )
            elif spec.unknown_children is not None:
                self.problems.warn(
                    child.line,
                    f"{path}/{child.tag}",
                    f"element <{child.tag}>: {spec.unknown_children}",
                )
            else:
                self.problems.error(
                    child.line,
                    path,
                    f"unknown element <{child.tag}>",
                    accepted=_child_names(spec),
                )
        return node

    def _attributes(self, xml: XmlElement, spec: Element, node: Node) -> None:
        for name, raw in xml.attrs.items():
            attr = spec.attr(name)
            if attr is not None:
                node.raw[name] = raw
                self._value(attr, raw, node)
            elif name in spec.ignored_attrs:
                self.problems.warn(
                    xml.line,
                    node.path,
                    f"{spec.ignored_attrs[name]}",
                    attribute=name,
                    value=raw,
                )
            elif (
                name in spec.silent_attrs
                or name.startswith("xmlns:")
                or spec.unknown_attrs == "ignore"
            ):
                continue
            else:
                node.ok = False
                self.problems.error(
                    xml.line,
                    node.path,
                    "unknown attribute",
                    attribute=name,
                    value=raw,
                    accepted=(*(a.name for a in spec.attrs), *spec.ignored_attrs),
                )
        for attr in spec.attrs:
            if attr.required and attr.name not in xml.attrs:
                node.ok = False
                self.problems.error(
                    xml.line, node.path, "required attribute is missing", attribute=attr.name
                )

    def _value(self, attr: Attr, raw: str, node: Node) -> None:
        def warn(message: str) -> None:
            self.problems.warn(node.line, node.path, message, attribute=attr.name, value=raw)

        context = ValueContext(self.base_dir, self.environ, warn)
        try:
            node.values[attr.name] = attr.type.parse(raw, context)
        except BadValueError as bad:
            node.ok = False
            self.problems.error(
                node.line,
                node.path,
                bad.message,
                attribute=attr.name,
                value=raw,
                accepted=bad.accepted,
            )

    def _text(self, xml: XmlElement, node: Node) -> None:
        text = xml.text.strip()
        if text:
            shown = text if len(text) <= 40 else text[:37] + "..."
            self.problems.error(
                xml.line, node.path, "text content is not allowed here", value=shown
            )

    # -- collection operations ----------------------------------------------

    def _remove(self, xml: XmlElement, collection: Collection, path: str) -> Node:
        keys = collection.keys
        key_spec = Element(REMOVE, attrs=tuple(a for a in collection.entry.attrs if a.key))
        node = Node(key_spec, f"{path}/{REMOVE}", xml.line)
        for name, raw in xml.attrs.items():
            attr = key_spec.attr(name)
            if attr is None:
                node.ok = False
                self.problems.error(
                    xml.line,
                    node.path,
                    "unknown attribute",
                    attribute=name,
                    value=raw,
                    accepted=keys,
                )
                continue
            node.raw[name] = raw
            self._value(attr, raw, node)
        if not xml.attrs:
            node.ok = False
            self.problems.error(
                xml.line,
                node.path,
                "<remove> must name the entry to remove by its key",
                accepted=keys or None,
            )
        self._no_content(xml, node)
        return node

    def _clear(self, xml: XmlElement, collection: Collection, path: str) -> Node:
        node = Node(Element(CLEAR), f"{path}/{CLEAR}", xml.line)
        for name, raw in xml.attrs.items():
            self.problems.error(
                xml.line, node.path, "<clear/> takes no attributes", attribute=name, value=raw
            )
        self._no_content(xml, node)
        return node

    def _no_content(self, xml: XmlElement, node: Node) -> None:
        self._text(xml, node)
        for child in xml.children:
            self.problems.error(child.line, node.path, f"unknown element <{child.tag}>")


def _segment(xml: XmlElement, collection: Collection) -> str:
    """``site[@name='X']``: the entry's tag with its first key (or name/path) attribute."""
    for name in (*collection.keys, "name", "path"):
        if name in xml.attrs:
            value = xml.attrs[name].replace("'", "&apos;")
            return f"{xml.tag}[@{name}='{value}']"
    return xml.tag


def _child_names(spec: Element) -> tuple[str, ...]:
    names = [child.name for child in spec.children]
    if spec.collection is not None:
        names.append(spec.collection.entry.name)
        if spec.collection.removable:
            names += [REMOVE, CLEAR]
    names += list(spec.ignored_children)
    return tuple(names)


def descend(node: Node | None, *names: str) -> Node | None:
    """The child at ``names`` below ``node`` (``descend(n, "security", "ssl")``), or None."""
    for name in names:
        if node is None:
            return None
        node = node.children.get(name)
    return node
