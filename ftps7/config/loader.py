"""Load the IIS-shaped XML configuration into a `ServerConfig`, or say everything that is wrong.

The steps: read and parse the XML safely (``xmltree``), validate it against
the schema (``walker``), build the model objects with siteDefaults
inheritance (``builder``), then do what a schema cannot: sites, bindings and
endpoints, virtual directories on disk, ``<location>`` authorization,
``<ftps7>`` defaults, and cross-field rules IIS itself enforces. Problems are
collected all the way through and raised together at the end.

Loading reads files and stats directories: it is meant for start-up and for
``ftps7 config check``, never for the reactor thread of a running server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ftps7.config import model as m
from ftps7.config import schema as s
from ftps7.config.builder import Builder, matches
from ftps7.config.errors import ConfigErrors, Problems
from ftps7.config.values import (
    BadValueError,
    Integer,
    Path,
    ValueContext,
    normalize_ftp_path,
)
from ftps7.config.walker import ADD, CLEAR, REMOVE, Node, Walker
from ftps7.config.xmltree import XmlError, parse_xml

_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*")
_BINDING_ACCEPTED = (
    "IP:PORT:HOST with IP *, an IPv4 address or [IPv6]; HOST empty or a host name",
)
FTP_PROTOCOLS = ("ftp", "ftps")


def load_config(path: str, environ: Mapping[str, str] | None = None) -> m.ServerConfig:
    """Read, validate and build the configuration at ``path``.

    ``environ`` supplies ``%NAME%`` in paths (default: the process environment).
    Raises `ConfigErrors` listing every problem; warnings (settings accepted but
    not implemented, sections ignored) are returned in ``ServerConfig.warnings``.
    """
    file = os.path.abspath(path)
    problems = Problems(file)
    try:
        with open(file, "rb") as stream:
            data = stream.read()
    except OSError as error:
        problems.error(0, "", f"cannot read the configuration file: {error.strerror or error}")
        raise ConfigErrors(problems.errors) from None
    try:
        root = parse_xml(data)
    except XmlError as problem:
        problems.error(problem.line, "", problem.message)
        raise ConfigErrors(problems.errors) from None
    env = dict(os.environ if environ is None else environ)
    config = _Loader(problems, file, env).load(root)
    problems.raise_if_any()
    assert config is not None
    return config


def parse_binding_information(text: str) -> tuple[str, int, str]:
    """``IP:PORT:HOST`` → (ip, port, host); ip is ``*``, IPv4 text, or IPv6 without brackets."""
    import ipaddress

    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or value[end + 1 : end + 2] != ":":
            raise BadValueError(f"bad value {text!r}", _BINDING_ACCEPTED)
        ip_text = value[1:end]
        port_text, separator, host = value[end + 2 :].partition(":")
        if not separator:
            raise BadValueError(f"bad value {text!r} (missing ':HOST')", _BINDING_ACCEPTED)
        try:
            ip = str(ipaddress.IPv6Address(ip_text))
        except ValueError:
            raise BadValueError(
                f"bad value {text!r} (bad IPv6 address)", _BINDING_ACCEPTED
            ) from None
    else:
        parts = value.split(":")
        if len(parts) != 3:
            hint = " (write IPv6 addresses in brackets)" if len(parts) > 3 else ""
            raise BadValueError(f"bad value {text!r}{hint}", _BINDING_ACCEPTED)
        ip_text, port_text, host = parts
        if ip_text == "*":
            ip = "*"
        else:
            try:
                ip = str(ipaddress.IPv4Address(ip_text))
            except ValueError:
                raise BadValueError(
                    f"bad value {text!r} (bad IP address {ip_text!r})", _BINDING_ACCEPTED
                ) from None
    try:
        port = Integer(1, 65535).parse(port_text, _NO_CONTEXT)
    except BadValueError:
        raise BadValueError(
            f"bad value {text!r} (bad port {port_text!r})", ("port 1..65535",)
        ) from None
    host = host.strip().lower()
    if host and (len(host) > 253 or not _HOST.fullmatch(host)):
        raise BadValueError(f"bad value {text!r} (bad host name {host!r})", _BINDING_ACCEPTED)
    return ip, port, host


_NO_CONTEXT = ValueContext("/", {}, lambda message: None)


class _Loader:
    def __init__(self, problems: Problems, file: str, environ: dict[str, str]) -> None:
        self.problems = problems
        self.file = file
        self.base_dir = os.path.dirname(file)
        self.environ = environ
        self.builder = Builder(problems)
        self.context = ValueContext(self.base_dir, environ, lambda message: None)
        self.declared_sites: dict[str, str] = {}  # lower-cased name -> name, every <site>
        self.unserved_sites: set[str] = set()  # sites without an FTP binding
        self.binding_paths: dict[m.Binding, str] = {}  # for messages about endpoints

    def load(self, root: Any) -> m.ServerConfig | None:
        document = Walker(self.problems, self.base_dir, self.environ).walk_document(
            root, s.CONFIGURATION
        )
        if document is None:
            return None
        ftps7 = self._ftps7(document.children.get("ftps7"))
        server_node = document.children.get("system.ftpServer")
        server = self.builder.build(s.SYSTEM_FTP_SERVER, [server_node] if server_node else [])
        self._check_server(server, server_node, ftps7)

        sites_node = _descend(document, "system.applicationHost", "sites")
        defaults_node = _descend(sites_node, "siteDefaults", "ftpServer")
        default_layers = [defaults_node] if defaults_node is not None else []
        site_defaults = self.builder.build(s.FTP_SERVER, default_layers)
        sites, checked = self._sites(sites_node, default_layers, ftps7) if sites_node else ([], [])
        self._check_endpoints(checked, server)
        authorization = self._authorization(document, server_node)
        return m.ServerConfig(
            path=self.file,
            sites=tuple(sites),
            site_defaults=site_defaults,
            server=server,
            authorization=tuple(authorization),
            ftps7=ftps7,
            warnings=self.problems.warning_texts(),
        )

    # -- <ftps7> ---------------------------------------------------------------

    def _ftps7(self, node: Node | None) -> m.Ftps7Settings:
        store = _descend(node, "certificateStore")
        store_settings = m.CertificateStoreSettings(
            path=_get(store, "path") or os.path.join(self.base_dir, "certs"),
            auto_create=_get(store, "autoCreate"),
        )
        accounts = _descend(node, "localAccounts")
        source = _get(accounts, "source") or m.AccountSource.FILE
        if source is m.AccountSource.FILE:
            _unused(self.problems, accounts, "service", 'it is used only with source="pam"')
            accounts_settings = m.LocalAccountsSettings(
                source=source, path=_get(accounts, "path") or os.path.join(self.base_dir, "users")
            )
        else:
            _unused(self.problems, accounts, "path", 'it is used only with source="file"')
            accounts_settings = m.LocalAccountsSettings(
                source=source, path=None, service=_get(accounts, "service") or "ftps7"
            )

        directory = self._active_directory(_descend(node, "activeDirectory"))
        spec = s.FTPS7
        return m.Ftps7Settings(
            certificate_store=store_settings,
            local_accounts=accounts_settings,
            active_directory=directory,
            tls=self._optional_model(spec, node, "tls"),
            process=self._optional_model(spec, node, "process"),
            proxy_protocol=self._optional_model(spec, node, "proxyProtocol"),
        )

    def _optional_model(self, parent: s.Element, node: Node | None, name: str) -> Any:
        spec = parent.child(name)
        assert spec is not None
        child = _descend(node, name)
        return self.builder.build(spec, [child] if child is not None else [])

    def _active_directory(self, node: Node | None) -> m.ActiveDirectorySettings | None:
        if node is None or not node.ok:
            return None
        spec = s.FTPS7.child("activeDirectory")
        assert spec is not None
        settings: m.ActiveDirectorySettings = self.builder.build(spec, [node])
        if settings.start_tls and settings.url.lower().startswith("ldaps:"):
            self.problems.error(
                node.line,
                node.path,
                'startTls="true" cannot be combined with an ldaps:// URL (already TLS)',
                attribute="startTls",
                value=node.raw.get("startTls"),
            )
        if (settings.bind_dn is None) != (settings.bind_password_file is None):
            self.problems.error(
                node.line,
                node.path,
                "bindDn and bindPasswordFile go together (both for a service account bind, "
                "neither for an anonymous bind)",
                attribute="bindDn" if settings.bind_dn is None else "bindPasswordFile",
            )
        for name, file in (
            ("bindPasswordFile", settings.bind_password_file),
            ("caFile", settings.ca_file),
        ):
            if file is not None and not os.path.isfile(file):
                self.problems.warn(
                    node.line,
                    node.path,
                    f"file {file!r} does not exist (yet)",
                    attribute=name,
                    value=node.raw.get(name),
                )
        return settings

    # -- server-wide system.ftpServer -----------------------------------------

    def _check_server(
        self, server: m.ServerFtpSettings, node: Node | None, ftps7: m.Ftps7Settings
    ) -> None:
        firewall = _descend(node, "firewallSupport")
        if firewall is not None and not firewall.ok:
            return  # the refused value is reported already; a range check would repeat it
        low, high = server.low_data_channel_port, server.high_data_channel_port
        where = (firewall.line, firewall.path) if firewall else (0, "")
        if (low == 0) != (high == 0):
            self.problems.error(
                *where,
                "lowDataChannelPort and highDataChannelPort must both be 0 (any port) or both set",
                attribute="lowDataChannelPort" if low == 0 else "highDataChannelPort",
                value="0",
            )
        elif low > high:
            self.problems.error(
                *where,
                f"lowDataChannelPort {low} is above highDataChannelPort {high}",
                attribute="lowDataChannelPort",
                value=str(low),
            )
        elif low and high - low + 1 < ftps7.process.workers:
            self.problems.error(
                *where,
                f"the passive port range {low}-{high} has fewer ports than the "
                f"{ftps7.process.workers} worker processes that share it",
                attribute="highDataChannelPort",
                value=str(high),
            )

    # -- sites -----------------------------------------------------------------

    def _sites(
        self, sites_node: Node, default_layers: Sequence[Node], ftps7: m.Ftps7Settings
    ) -> tuple[list[m.Site], list[m.Site]]:
        """The servable sites, and every site with FTP bindings (for the endpoint checks,
        which must run even when a site has other errors)."""
        sites: list[m.Site] = []
        checked: list[m.Site] = []
        names: dict[str, Node] = {}
        ids: dict[int, Node] = {}
        for op in sites_node.ops:
            node = op.node
            name: str | None = node.values.get("name")
            if name is not None:
                self.declared_sites.setdefault(name.lower(), name)
            if name is None or op.kind != ADD:
                continue  # a site without a usable name: its error is reported already
            site_id: int | None = node.values.get("id")
            if name.lower() in names:
                self.problems.error(
                    node.line,
                    node.path,
                    f"duplicate site name {name!r} (first at line {names[name.lower()].line})",
                    attribute="name",
                    value=node.raw["name"],
                )
                continue
            names[name.lower()] = node
            if site_id is not None and site_id in ids:
                self.problems.error(
                    node.line,
                    node.path,
                    f"duplicate site id {site_id} (first at line {ids[site_id].line})",
                    attribute="id",
                    value=node.raw["id"],
                )
                continue
            if site_id is not None:
                ids[site_id] = node
            # A site with a refused attribute is still checked all the way through.
            site, servable = self._site(node, default_layers, ftps7)
            if site is not None:
                checked.append(site)
                if servable and node.ok:
                    sites.append(site)
        return sites, checked

    def _site(
        self, node: Node, default_layers: Sequence[Node], ftps7: m.Ftps7Settings
    ) -> tuple[m.Site | None, bool]:
        """The site (None without FTP bindings) and whether it is free of errors.

        Everything is checked even when an early part was refused, so one run
        reports every problem of the site.
        """
        name: str = node.values["name"]
        bindings, bindings_ok = self._bindings(node)
        if not bindings and bindings_ok:
            self.unserved_sites.add(name.lower())
            self.problems.warn(
                node.line, node.path, f"site {name!r} has no ftp or ftps binding; not served"
            )
            return None, False
        directories = self._virtual_directories(node)
        ftp_node = node.children.get("ftpServer")
        layers = [*default_layers, *([ftp_node] if ftp_node is not None else [])]
        ftp_server: m.SiteFtpServer = self.builder.build(s.FTP_SERVER, layers)
        self._check_site(name, node, layers, ftp_server, ftps7)
        site = m.Site(
            name=name,
            id=node.values.get("id", 0),
            server_auto_start=node.values.get("serverAutoStart", True),
            bindings=tuple(bindings),
            virtual_directories=directories or (),
            ftp_server=ftp_server,
        )
        return site, directories is not None and bindings_ok

    def _bindings(self, site: Node) -> tuple[list[m.Binding], bool]:
        """The site's good FTP bindings (other protocols skipped), and whether none was refused."""
        bindings_node = site.children.get("bindings")
        if bindings_node is None:
            return [], True
        collection = s.BINDINGS.collection
        assert collection is not None
        result: list[m.Binding] = []
        refused = False
        for entry in self.builder.entries(collection, [bindings_node]):
            protocol: str = entry.values["protocol"]
            if protocol not in FTP_PROTOCOLS:
                continue  # http, https, net.tcp ...: real files mix them in; not ours
            text: str = entry.values["bindingInformation"]
            try:
                ip, port, host = parse_binding_information(text)
            except BadValueError as bad:
                refused = True
                self.problems.error(
                    entry.line,
                    entry.path,
                    bad.message,
                    attribute="bindingInformation",
                    value=entry.raw["bindingInformation"],
                    accepted=bad.accepted,
                )
                continue
            binding = m.Binding(protocol, ip, port, host, line=entry.line)
            self.binding_paths[binding] = entry.path
            result.append(binding)
        return result, not refused

    def _virtual_directories(self, site: Node) -> tuple[m.VirtualDirectory, ...] | None:
        assert s.SITE.collection is not None and s.APPLICATION.collection is not None
        found: dict[str, tuple[m.VirtualDirectory, Node]] = {}
        refused = False
        path_type = Path(must_be_dir=True)
        for application in self.builder.entries(s.SITE.collection, [site]):
            base: str = application.values["path"]
            for entry in self.builder.entries(s.APPLICATION.collection, [application]):
                ftp_path = normalize_ftp_path(base.rstrip("/") + entry.values["path"])
                raw = entry.values["physicalPath"]
                try:
                    physical = path_type.parse(raw, self.context)
                except BadValueError as bad:
                    refused = True
                    self.problems.error(
                        entry.line,
                        entry.path,
                        bad.message,
                        attribute="physicalPath",
                        value=raw,
                        accepted=bad.accepted,
                    )
                    continue
                if ftp_path in found:
                    refused = True
                    self.problems.error(
                        entry.line,
                        entry.path,
                        f"FTP path {ftp_path!r} is already a virtual directory "
                        f"(line {found[ftp_path][1].line})",
                        attribute="path",
                        value=entry.raw.get("path"),
                    )
                    continue
                assert physical is not None
                found[ftp_path] = (m.VirtualDirectory(ftp_path, physical), entry)
        if "/" not in found:
            if not refused:
                self.problems.error(
                    site.line,
                    site.path,
                    'the site needs <application path="/"> with '
                    '<virtualDirectory path="/" physicalPath="..."> (its root folder)',
                )
            return None
        if refused:
            return None
        ordered = sorted(found, key=lambda path: (path != "/", path))
        return tuple(found[path][0] for path in ordered)

    def _check_site(
        self,
        name: str,
        node: Node,
        layers: Sequence[Node],
        ftp_server: m.SiteFtpServer,
        ftps7: m.Ftps7Settings,
    ) -> None:
        directory = ftps7.active_directory
        if ftp_server.user_isolation is m.UserIsolationMode.ACTIVE_DIRECTORY and directory is None:
            origin = _origin(layers, ("userIsolation",), "mode") or node
            self.problems.error(
                origin.line,
                origin.path,
                f"site {name!r}: userIsolation mode ActiveDirectory needs "
                "<ftps7><activeDirectory url=...>",
                attribute="mode",
                value=origin.raw.get("mode"),
            )
        if ftp_server.client_certificates.use_active_directory_mapping and directory is None:
            origin = (
                _origin(layers, ("security", "sslClientCertificates"), "useActiveDirectoryMapping")
                or node
            )
            self.problems.error(
                origin.line,
                origin.path,
                f"site {name!r}: useActiveDirectoryMapping needs <ftps7><activeDirectory url=...>",
                attribute="useActiveDirectoryMapping",
                value=origin.raw.get("useActiveDirectoryMapping"),
            )
        if ftp_server.authentication.default_logon_domain and directory is None:
            basic = ("security", "authentication", "basicAuthentication")
            origin = _origin(layers, basic, "defaultLogonDomain") or node
            self.problems.warn(
                origin.line,
                origin.path,
                f"site {name!r}: defaultLogonDomain has no effect without "
                "<ftps7><activeDirectory>; local accounts ignore the domain",
                attribute="defaultLogonDomain",
                value=origin.raw.get("defaultLogonDomain"),
            )

    # -- endpoints -------------------------------------------------------------

    def _check_endpoints(self, sites: Sequence[m.Site], server: m.ServerFtpSettings) -> None:
        """IIS's binding rules: one owner per IP:PORT:HOST, one default site per IP:PORT,
        and one TLS mode (implicit or explicit) per port a listener serves."""
        owners: dict[tuple[str, int, str], tuple[m.Site, m.Binding]] = {}
        modes: dict[tuple[str, int], tuple[m.Site, m.Binding]] = {}
        for site in sites:
            for binding in site.bindings:
                key = (binding.ip, binding.port, binding.host)
                where = (binding.line, self.binding_paths.get(binding, ""))
                value = _binding_text(binding)
                if key in owners:
                    other_site, other = owners[key]
                    if binding.host:
                        message = (
                            f"IP:PORT:HOST {value} is already bound by site "
                            f"{other_site.name!r} (line {other.line})"
                        )
                    else:
                        message = (
                            f"two default sites (empty HOST) on {_endpoint_text(binding)}: "
                            f"{other_site.name!r} (line {other.line}) and {site.name!r}; give one "
                            "of them a host name"
                        )
                    self.problems.error(
                        *where, message, attribute="bindingInformation", value=value
                    )
                    continue
                owners[key] = (site, binding)
                for endpoint in _overlapping(binding, modes):
                    other_site, other = modes[endpoint]
                    if other.implicit != binding.implicit:
                        self.problems.error(
                            *where,
                            f"{_mode(binding)} on {_endpoint_text(binding)} conflicts with "
                            f"{_mode(other)} for site {other_site.name!r} (line {other.line}) "
                            "on the same listening port",
                            attribute="protocol",
                            value=binding.protocol,
                        )
                        break
                modes.setdefault(binding.endpoint, (site, binding))
                low, high = server.low_data_channel_port, server.high_data_channel_port
                if low and low <= binding.port <= high:
                    self.problems.warn(
                        *where,
                        f"port {binding.port} lies inside the passive port range {low}-{high}",
                        attribute="bindingInformation",
                        value=value,
                    )

    # -- authorization ---------------------------------------------------------

    def _authorization(
        self, document: Node, server_node: Node | None
    ) -> list[tuple[m.LocationKey, m.AuthorizationSection]]:
        sections: dict[m.LocationKey, Node] = {}
        top = _descend(server_node, "security", "authorization")
        if top is not None:
            sections[m.LocationKey(None, "/")] = top
        for op in document.ops:
            location = op.node
            node = _descend(location, "system.ftpServer", "security", "authorization")
            if node is None or not location.ok:
                continue
            key = self._location_key(location)
            if key is None:
                continue
            if key in sections:
                self.problems.error(
                    node.line,
                    node.path,
                    f"authorization for this location is already defined at line "
                    f"{sections[key].line}",
                )
                continue
            sections[key] = node
        resolved = _AuthorizationResolver(self.problems, sections)
        return [(key, resolved.section(key)) for key in sections]

    def _location_key(self, location: Node) -> m.LocationKey | None:
        raw: str = location.values.get("path", "")
        text = raw.strip().strip("/")
        if text in ("", "."):
            return m.LocationKey(None, "/")
        site_name, _, rest = text.partition("/")
        lowered = site_name.lower()
        if lowered not in self.declared_sites:
            self.problems.error(
                location.line,
                location.path,
                f"location names site {site_name!r}, which does not exist",
                attribute="path",
                value=raw,
                accepted=tuple(self.declared_sites.values()) or None,
            )
            return None
        if lowered in self.unserved_sites:
            self.problems.warn(
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
            self.problems.error(
                location.line, location.path, bad.message, attribute="path", value=raw
            )
            return None
        return m.LocationKey(lowered, path)


class _AuthorizationResolver:
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


# --------------------------------------------------------------------------
# Small helpers


def _descend(node: Node | None, *names: str) -> Node | None:
    for name in names:
        if node is None:
            return None
        node = node.children.get(name)
    return node


def _get(node: Node | None, name: str) -> Any:
    return None if node is None else node.values.get(name)


def _unused(problems: Problems, node: Node | None, name: str, why: str) -> None:
    if node is not None and name in node.raw:
        problems.warn(node.line, node.path, f"ignored: {why}", attribute=name, value=node.raw[name])


def _origin(layers: Sequence[Node], names: Sequence[str], attribute: str) -> Node | None:
    """The highest-priority layer's node that sets ``attribute`` (for messages)."""
    for layer in reversed(layers):
        node = _descend(layer, *names)
        if node is not None and attribute in node.values:
            return node
    return None


def _binding_text(binding: m.Binding) -> str:
    ip = f"[{binding.ip}]" if ":" in binding.ip else binding.ip
    return f"{ip}:{binding.port}:{binding.host}"


def _endpoint_text(binding: m.Binding) -> str:
    ip = f"[{binding.ip}]" if ":" in binding.ip else binding.ip
    return f"{ip}:{binding.port}"


def _mode(binding: m.Binding) -> str:
    return "implicit FTPS" if binding.implicit else "explicit FTP/FTPS"


def _overlapping(
    binding: m.Binding, modes: Mapping[tuple[str, int], tuple[m.Site, m.Binding]]
) -> list[tuple[str, int]]:
    """Endpoints already seen that one listening socket would serve together with this one:
    the same IP:PORT, or the same port when either side is ``*`` (all addresses)."""
    return [
        endpoint
        for endpoint in modes
        if endpoint[1] == binding.port
        and (endpoint[0] == binding.ip or "*" in (endpoint[0], binding.ip))
    ]
