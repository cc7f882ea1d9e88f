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
from collections.abc import Mapping, Sequence
from typing import Any

from ftps7.config import model as m
from ftps7.config import schema as s
from ftps7.config.authorization import SiteNames, authorization_sections
from ftps7.config.bindings import FTP_PROTOCOLS, check_endpoints, parse_binding_information
from ftps7.config.builder import Builder
from ftps7.config.errors import ConfigErrors, Problems
from ftps7.config.values import BadValueError, Path, ValueContext, normalize_ftp_path
from ftps7.config.walker import ADD, Node, Walker, descend
from ftps7.config.xmltree import XmlElement, XmlError, parse_xml


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


class _Loader:
    def __init__(self, problems: Problems, file: str, environ: dict[str, str]) -> None:
        self.problems = problems
        self.file = file
        self.base_dir = os.path.dirname(file)
        self.environ = environ
        self.builder = Builder(problems)
        self.context = ValueContext(self.base_dir, environ, lambda message: None)
        self.site_names = SiteNames()  # for <location path="Site/...">
        self.binding_paths: dict[m.Binding, str] = {}  # for messages about endpoints

    def load(self, root: XmlElement) -> m.ServerConfig | None:
        document = Walker(self.problems, self.base_dir, self.environ).walk_document(
            root, s.CONFIGURATION
        )
        if document is None:
            return None
        ftps7 = self._ftps7(document.children.get("ftps7"))
        server_node = document.children.get("system.ftpServer")
        server = self.builder.build(s.SYSTEM_FTP_SERVER, [server_node] if server_node else [])
        self._check_server(server, server_node, ftps7)

        sites_node = descend(document, "system.applicationHost", "sites")
        defaults_node = descend(sites_node, "siteDefaults", "ftpServer")
        default_layers = [defaults_node] if defaults_node is not None else []
        site_defaults = self.builder.build(s.FTP_SERVER, default_layers)
        sites, checked = self._sites(sites_node, default_layers, ftps7) if sites_node else ([], [])
        check_endpoints(self.problems, checked, server, self.binding_paths)
        authorization = authorization_sections(self.problems, document, self.site_names)
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
        store = descend(node, "certificateStore")
        store_settings = m.CertificateStoreSettings(
            path=_get(store, "path") or os.path.join(self.base_dir, "certs"),
            auto_create=_get(store, "autoCreate"),
        )
        accounts = descend(node, "localAccounts")
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

        directory = self._active_directory(descend(node, "activeDirectory"))
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
        child = descend(node, name)
        return self.builder.build(spec, [child] if child is not None else [])

    def _active_directory(self, node: Node | None) -> m.ActiveDirectorySettings | None:
        if node is None or "url" not in node.values:
            return None  # absent, or its url refused (reported already)
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
        firewall = descend(node, "firewallSupport")
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
                self.site_names.declared.setdefault(name.lower(), name)
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
            self.site_names.unserved.add(name.lower())
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


# --------------------------------------------------------------------------
# Small helpers


def _get(node: Node | None, name: str) -> Any:
    return None if node is None else node.values.get(name)


def _unused(problems: Problems, node: Node | None, name: str, why: str) -> None:
    if node is not None and name in node.raw:
        problems.warn(node.line, node.path, f"ignored: {why}", attribute=name, value=node.raw[name])


def _origin(layers: Sequence[Node], names: Sequence[str], attribute: str) -> Node | None:
    """The highest-priority layer's node that sets ``attribute`` (for messages)."""
    for layer in reversed(layers):
        node = descend(layer, *names)
        if node is not None and attribute in node.values:
            return node
    return None
