"""Authorization sections: ``<location path="Site/sub">`` rules, keyed by where they apply.

The model keeps, per place, the rules declared there and whether they start
with ``<clear/>``; the authorization engine applies IIS's inheritance (a
location adds to its parent's rules) at run time. This module finds the
places, refuses duplicates and unknown sites, and applies ``<remove>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ftps7.config import model as m
from ftps7.config import schema as s
from ftps7.config.builder import matches
from ftps7.config.errors import Problems
from ftps7.config.values import BadValueError, normalize_ftp_path
from ftps7.config.walker import ADD, CLEAR, REMOVE, Node, descend


@dataclass
class SiteNames:
    """The sites a ``<location>`` may name: every declared ``<site>`` (lower-cased name ->
    name as written), and those not served because they have no FTP binding."""

    declared: dict[str, str] = field(default_factory=dict)
    unserved: set[str] = field(default_factory=set)


def authorization_sections(
    problems: Problems, document: Node, sites: SiteNames
) -> list[tuple[m.LocationKey, m.AuthorizationSection]]:
    """Every authorization section of the file, keyed by where it applies.

    The top-level ``<system.ftpServer><security><authorization>`` is every
    site's ``/``; each ``<location path="Site/sub">`` adds one section.
    """
    server_node = document.children.get("system.ftpServer")
    sections: dict[m.LocationKey, Node] = {}
    top = descend(server_node, "security", "authorization")
    if top is not None:
        sections[m.LocationKey(None, "/")] = top
    for op in document.ops:
        location = op.node
        node = descend(location, "system.ftpServer", "security", "authorization")
        if node is None or not location.ok:
            continue
        key = location_key(problems, location, sites)
        if key is None:
            continue
        if key in sections:
            problems.error(
                node.line,
                node.path,
                f"authorization for this location is already defined at line {sections[key].line}",
            )
            continue
        sections[key] = node
    resolved = AuthorizationResolver(problems, sections)
    return [(key, resolved.section(key)) for key in sections]


def location_key(problems: Problems, location: Node, sites: SiteNames) -> m.LocationKey | None:
    """``path="Site Name/sub/dir"`` → (site lower-cased, "/sub/dir"); "" → every site."""
    raw: str = location.values.get("path", "")
    text = raw.strip().strip("/")
    if text in ("", "."):
        return m.LocationKey(None, "/")
    site_name, _, rest = text.partition("/")
    lowered = site_name.lower()
    if lowered not in sites.declared:
        problems.error(
            location.line,
            location.path,
            f"location names site {site_name!r}, which does not exist",
            attribute="path",
            value=raw,
            accepted=tuple(sites.declared.values()) or None,
        )
        return None
    if lowered in sites.unserved:
        problems.warn(
            location.line,
            location.path,
            f"site {site_name!r} is not served (no ftp binding); its authorization is ignored",
            attribute="path",
            value=raw,
        )
        return None
    try:
        path = normalize_ftp_path("/" + rest)
    except BadValueError as bad:
        problems.error(location.line, location.path, bad.message, attribute="path", value=raw)
        return None
    return m.LocationKey(lowered, path)


class AuthorizationResolver:
    """Applies ``<clear/>``, ``<add>`` and ``<remove>`` of each location's rules.

    A location's rules are, as in IIS, its parent's effective rules plus its own;
    ``<clear/>`` drops the parent's. The model keeps just ``(clear, rules)`` per
    location, and the authorization engine does the inheritance; when a
    ``<remove>`` takes away an *inherited* rule that cannot be expressed that
    way, so such a section is given as ``clear=True`` with its full effective
    rule list instead, which is equivalent.
    """

    def __init__(self, problems: Problems, sections: Mapping[m.LocationKey, Node]) -> None:
        self.problems = problems
        self.sections = sections
        self.local: dict[m.LocationKey, tuple[bool, list[Node], list[Node]]] = {
            key: self._local(node) for key, node in sections.items()
        }

    def _local(self, node: Node) -> tuple[bool, list[Node], list[Node]]:
        clear = False
        rules: list[Node] = []
        inherited_removes: list[Node] = []
        for op in node.ops:
            if not op.node.ok:
                continue
            if op.kind == CLEAR:
                clear, rules, inherited_removes = True, [], []
            elif op.kind == REMOVE:
                rules = [rule for rule in rules if not matches(rule, op.node.values)]
                if not clear:
                    inherited_removes.append(op.node)
            elif op.kind == ADD:
                values = op.node.entry_values()
                if not values["users"] and not values["roles"]:
                    self.problems.error(
                        op.node.line,
                        op.node.path,
                        'an authorization rule needs users or roles (users="*" is everyone)',
                    )
                    continue
                if any(rule.entry_values() == values for rule in rules):
                    self.problems.error(op.node.line, op.node.path, "duplicate authorization rule")
                    continue
                rules.append(op.node)
        return clear, rules, inherited_removes

    def _parent(self, key: m.LocationKey) -> m.LocationKey | None:
        if key.site is None:
            return None
        path = key.path
        while path != "/":
            path = path.rsplit("/", 1)[0] or "/"
            candidate = m.LocationKey(key.site, path)
            if candidate in self.sections:
                return candidate
        everywhere = m.LocationKey(None, "/")
        return everywhere if everywhere in self.sections else None

    def _effective(self, key: m.LocationKey) -> list[Node]:
        clear, rules, removes = self.local[key]
        if clear:
            return list(rules)
        parent = self._parent(key)
        inherited = self._effective(parent) if parent is not None else []
        for remove in removes:
            inherited = [rule for rule in inherited if not matches(rule, remove.values)]
        return inherited + rules

    def section(self, key: m.LocationKey) -> m.AuthorizationSection:
        clear, rules, removes = self.local[key]
        if removes and not clear:
            clear, rules = True, self._effective(key)
        return m.AuthorizationSection(
            clear=clear,
            rules=tuple(s.authorization_rule(rule.entry_values()) for rule in rules),
        )
