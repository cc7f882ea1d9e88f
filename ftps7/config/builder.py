"""Turn validated nodes into the frozen model objects, layer by layer.

A *layer* is one node for the same schema element at one level of
inheritance: ``[siteDefaults/ftpServer, site/ftpServer]``. Each model field
takes its value from the last layer that sets the attribute, else the model's
own default; collections apply every layer's ``<add>``/``<remove>``/``<clear/>``
in order, so a site's operations act on what siteDefaults left. This is the
IIS inheritance rule, attribute by attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ftps7.config.errors import Problems
from ftps7.config.schema import Collection, Element
from ftps7.config.walker import ADD, CLEAR, REMOVE, Node


class Builder:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def build(self, spec: Element, layers: Sequence[Node]) -> Any:
        """The model object for ``spec`` from ``layers`` (lowest priority first)."""
        assert spec.model is not None, spec.name
        return spec.model(**self.fields(spec, layers))

    def fields(self, spec: Element, layers: Sequence[Node]) -> dict[str, Any]:
        """The keyword arguments that ``layers`` set for ``spec``'s model."""
        kwargs: dict[str, Any] = {}
        for attr in spec.attrs:
            if attr.field is None:
                continue
            for layer in reversed(layers):
                if attr.name in layer.values:
                    kwargs[attr.field] = layer.values[attr.name]
                    break
        for child in spec.children:
            child_layers = [
                layer.children[child.name] for layer in layers if child.name in layer.children
            ]
            if child.model is None:
                kwargs.update(self.fields(child, child_layers))
            elif child.field is not None:
                kwargs[child.field] = self.build(child, child_layers)
        collection = spec.collection
        if collection is not None and collection.field is not None and collection.build is not None:
            kwargs[collection.field] = tuple(
                collection.build(entry.entry_values()) for entry in self.entries(collection, layers)
            )
        return kwargs

    def entries(self, collection: Collection, layers: Sequence[Node]) -> list[Node]:
        """The entries left after applying every layer's operations, in order.

        Adding an entry whose key is already present is an error, as in IIS: to
        replace an inherited entry, ``<remove>`` it first.
        """
        keys = collection.keys
        current: list[Node] = []
        for layer in layers:
            for op in layer.ops:
                if not op.node.ok:
                    continue
                if op.kind == CLEAR:
                    current = []
                elif op.kind == REMOVE:
                    current = [entry for entry in current if not matches(entry, op.node.values)]
                elif op.kind == ADD:
                    duplicate = _duplicate(current, op.node, keys)
                    if duplicate is not None:
                        self.problems.error(
                            op.node.line,
                            op.node.path,
                            f"duplicate <{op.node.spec.name}>: an entry with the same "
                            f"{', '.join(keys)} was added at line {duplicate.line} "
                            "(use <remove> first to replace it)",
                        )
                        continue
                    current.append(op.node)
        return current


def matches(entry: Node, given: Mapping[str, Any]) -> bool:
    """Whether a collection entry has every key value that a ``<remove>`` gives."""
    values = entry.entry_values()
    return all(values.get(name) == value for name, value in given.items())


def _duplicate(current: Sequence[Node], node: Node, keys: Sequence[str]) -> Node | None:
    if not keys:
        return None
    values = node.entry_values()
    key = tuple(values.get(name) for name in keys)
    for entry in current:
        entry_values = entry.entry_values()
        if tuple(entry_values.get(name) for name in keys) == key:
            return entry
    return None
