"""A real OpenLDAP ``slapd`` on a loopback port, for the directory tests.

Active Directory is not available on a Linux test machine, so the
integration tests run against Debian's slapd with a tiny schema that gives
OpenLDAP the AD attributes ftps7 reads (RESEARCH.md §6.4). The shipped
``msuser.schema`` is not usable: its ``altSecurityIdentities`` and
``userPrincipalName`` have no EQUALITY rule, so equality filters never match.

Typical use::

    server = start_slapd(tmp_dir, ldif=entries)        # plain ldap://
    server = start_slapd(tmp_dir, ldif=entries, tls=SlapdTls(cert_pem, key_pem, ca_pem))
    ...
    server.stop()     # and server.start() brings it back on the same port

slapd runs in the foreground (``-d 0``: no detaching, so the process we
started is the server and is stopped by its own pid) and is declared ready
when an LDAP bind succeeds, polled against a deadline rather than a sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=example,dc=com"
ADMIN_DN = "cn=admin,dc=example,dc=com"
ADMIN_PASSWORD = "admin-secret"  # noqa: S105 - a throwaway fixture password

# AD attribute and class OIDs (MS-ADA1/2/3, MS-ADSC), with the matching rules
# OpenLDAP needs for equality filters. adUserAux is an auxiliary class under
# the registration-free UUID arc 2.25 so that inetOrgPerson entries can carry
# the AD attributes. msIIS-FTPRoot is ...1785 and msIIS-FTPDir ...1786 (MS-ADA2).
AD_MIN_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.867 NAME 'altSecurityIdentities'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.1785 NAME 'msIIS-FTPRoot'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.1786 NAME 'msIIS-FTPDir'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.102 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
objectclass ( 2.25.329800735698586629295641978511506172918 NAME 'adUserAux' AUXILIARY
  MAY ( userPrincipalName $ altSecurityIdentities $ sAMAccountName $
        userAccountControl $ userCertificate $ msIIS-FTPRoot $ msIIS-FTPDir $ memberOf ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL
  MUST cn MAY ( member $ sAMAccountName $ description ) )
"""


class SlapdUnavailable(RuntimeError):
    """slapd is not installed here; tests should skip, not fail."""


def slapd_installed() -> bool:
    return all(os.access(tool, os.X_OK) for tool in (SLAPD, SLAPADD)) and SCHEMA_DIR.is_dir()


def free_port(host: str = "127.0.0.1") -> int:
    """A port below the ephemeral range, in this xdist worker's band (see harness)."""
    from tests.integration.harness import free_port as harness_free_port

    return harness_free_port(host)


@dataclass(frozen=True)
class SlapdTls:
    """PEM material for slapd's TLS (served on ldaps:// and via StartTLS)."""

    cert_pem: bytes  # the server certificate (leaf first, then chain)
    key_pem: bytes
    ca_pem: bytes  # what a client should trust to verify the server


@dataclass
class SlapdServer:
    """One slapd instance. ``start()``/``stop()`` may be repeated (same port, same data)."""

    workdir: Path
    port: int
    tls_port: int | None
    base_dn: str = BASE_DN
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    ca_file: str | None = None
    host: str = "127.0.0.1"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        if self.tls_port is None:
            raise AssertionError("this slapd was started without TLS")
        return f"ldaps://{self.host}:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Run slapd and return once it answers a bind (or raise with its log)."""
        if self.running:
            return
        urls = [f"ldap://{self.host}:{self.port}/"]
        if self.tls_port is not None:
            urls.append(f"ldaps://{self.host}:{self.tls_port}/")
        log = (self.workdir / "slapd.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [SLAPD, "-d", "0", "-f", str(self.workdir / "slapd.conf"), "-h", " ".join(urls)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _answers_bind(self.host, self.port, self.admin_dn, self.admin_password):
                return
            time.sleep(0.02)  # polling interval of a readiness loop, not a fixed wait
        self.stop()
        raise RuntimeError(f"slapd did not become ready; its log:\n{self.log_text()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the slapd we started (by its pid) and wait until it has exited."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def log_text(self) -> str:
        path = self.workdir / "slapd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _answers_bind(host: str, port: int, dn: str, password: str) -> bool:
    """Whether slapd completes a simple bind as the admin."""
    import ldap3

    server = ldap3.Server(host, port=port, get_info=ldap3.NONE, connect_timeout=1)
    connection = ldap3.Connection(server, dn, password, receive_timeout=1)
    try:
        return bool(connection.bind())
    except ldap3.core.exceptions.LDAPException:
        return False
    finally:
        with contextlib.suppress(ldap3.core.exceptions.LDAPException):
            connection.unbind()


def _slapd_conf(workdir: Path, tls: bool) -> str:
    includes = "\n".join(
        f"include {SCHEMA_DIR / name}.schema" for name in ("core", "cosine", "inetorgperson")
    )
    tls_lines = (
        f"TLSCertificateFile {workdir / 'server.pem'}\n"
        f"TLSCertificateKeyFile {workdir / 'server.key'}\n"
        f"TLSCACertificateFile {workdir / 'ca.pem'}\n"
        if tls
        else ""
    )
    return f"""\
{includes}
include {workdir / "ad-min.schema"}
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
{tls_lines}
database mdb
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {workdir / "db"}
maxsize 10485760
index objectClass,userPrincipalName,altSecurityIdentities,sAMAccountName,member eq
access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by * read
"""


def base_ldif() -> str:
    """The suffix entry and the OUs the tests put users and groups in."""
    return f"""\
dn: {BASE_DN}
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=Users,{BASE_DN}
objectClass: organizationalUnit
ou: Users

dn: ou=Groups,{BASE_DN}
objectClass: organizationalUnit
ou: Groups
"""


def start_slapd(
    tmp_dir: Path,
    ldif: str = "",
    *,
    tls: SlapdTls | None = None,
    timeout: float = 15.0,
) -> SlapdServer:
    """Load ``base_ldif() + ldif`` into a fresh database and start slapd on loopback.

    Raises :class:`SlapdUnavailable` when slapd is not installed (callers turn
    that into ``pytest.skip``).
    """
    if not slapd_installed():
        raise SlapdUnavailable(f"slapd is not installed ({SLAPD}; apt-get install slapd)")
    workdir = Path(tmp_dir)
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    (workdir / "ad-min.schema").write_text(AD_MIN_SCHEMA)
    if tls is not None:
        (workdir / "server.pem").write_bytes(tls.cert_pem)
        (workdir / "server.key").write_bytes(tls.key_pem)
        (workdir / "server.key").chmod(0o600)
        (workdir / "ca.pem").write_bytes(tls.ca_pem)
    (workdir / "slapd.conf").write_text(_slapd_conf(workdir, tls is not None))
    (workdir / "data.ldif").write_text(base_ldif() + "\n" + ldif)
    loaded = subprocess.run(
        [SLAPADD, "-q", "-f", str(workdir / "slapd.conf"), "-l", str(workdir / "data.ldif")],
        capture_output=True,
        check=False,
    )
    if loaded.returncode != 0:
        raise RuntimeError(
            "slapadd failed:\n" + loaded.stdout.decode(errors="replace")
            + loaded.stderr.decode(errors="replace")
        )
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probe and bind
        server = SlapdServer(
            workdir=workdir,
            port=free_port(),
            tls_port=free_port() if tls is not None else None,
            ca_file=str(workdir / "ca.pem") if tls is not None else None,
        )
        try:
            server.start(timeout)
            return server
        except RuntimeError as error:
            last_error = error
    raise RuntimeError(f"slapd would not start: {last_error}")
