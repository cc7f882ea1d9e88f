"""Site-level IIS features end to end: messages, limits, timeouts, command
filtering, listing styles, virtual directories, user isolation, file handling,
anonymous logons, lockout, IP restrictions, authorization rules and
third-party checkers (``--auth``).

Where a feature is per site, one server process often carries several sites
on different ports (one configuration, one start) and each test talks to the
site it needs.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Running
from tests.integration.harness import SiteSpec, free_port, location, rule
from tests.integration.test_robustness import PLAIN, RawControl, read_until_closed, reset

ANONYMOUS_PROMPT = "331 Anonymous access allowed, send identity (e-mail name) as password."


def start_sites(start_server: Callable[..., Running], specs: dict[str, dict[str, Any]],
                **options: Any) -> tuple[Running, dict[str, int]]:
    """One server with a plaintext-allowed site per entry of ``specs`` (name → SiteSpec fields)."""
    ports = {name: free_port() for name in specs}
    sites = [
        SiteSpec(name=name, id=index, bindings=[f"ftp:127.0.0.1:{ports[name]}:"],
                 **{**PLAIN, **fields})
        for index, (name, fields) in enumerate(specs.items(), start=1)
    ]
    return start_server(sites=sites, **options), ports


def plain_login(server: Running, port: int, user: str = "alice",
                password: str | None = None) -> ftplib.FTP:
    client = server.plain(port)
    client.login(user, password or {"alice": "alice-pw", "bob": "bob-pw"}[user])
    return client


def listing(client: ftplib.FTP, path: str = "") -> tuple[list[str], str]:
    lines: list[str] = []
    final = client.retrlines(f"LIST {path}".strip(), lines.append)
    return lines, final


def closing_words(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (an RST counts as a close)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def expect_closed(client: RawControl) -> None:
    assert closing_words(client.sock) == b""


# ---------------------------------------------------------------- messages


def test_banner_greeting_and_exit_messages_with_variables(
    start_server: Callable[..., Running],
) -> None:
    server = start_server(
        **PLAIN,
        extra=(
            '<messages bannerMessage="Welcome to&#10;%SiteName%" '
            'greetingMessage="Hello %UserName%&#10;230 is not the last line" '
            'exitMessage="Bye %UserName%: %BytesSent% bytes sent" expandVariables="true" />'
        ),
    )
    client = RawControl(server.host, server.port)
    assert client.greeting == (220, "220-ftps7 FTP Service\nWelcome to\n220 Test Site")
    assert client.cmd("USER alice")[0] == 331
    code, text = client.cmd("PASS alice-pw")
    # A message line that looks like a final reply is indented (RFC 959 §4.2).
    assert (code, text) == (230, "230-Hello alice\n 230 is not the last line\n230 User logged in.")
    data = client.epsv()
    assert client.cmd("RETR hello.txt")[0] == 150
    assert read_until_closed(data) == b"Hello, world!\n"
    assert client.reply()[0] == 226
    assert client.cmd("QUIT") == (221, "221 Bye alice: 14 bytes sent")
    expect_closed(client)


def test_suppressed_banner_and_unexpanded_variables(start_server: Callable[..., Running]) -> None:
    server = start_server(
        extra=(
            '<messages bannerMessage="Authorized use only, %UserName%." '
            'suppressDefaultBanner="true" exitMessage="See you." />'
        ),
    )
    client = server.ftps(login=False)
    assert client.getwelcome() == "220 Authorized use only, %UserName%."
    client.auth()
    client.login("alice", "alice-pw")
    assert client.quit() == "221 See you."


# ------------------------------------------------------ connection limits


@pytest.mark.parametrize("reset_on_max", [False, True])
def test_max_connections(start_server: Callable[..., Running], reset_on_max: bool) -> None:
    server = start_server(
        **PLAIN,
        extra=(
            '<connections maxConnections="1" '
            f'resetOnMaxConnections="{str(reset_on_max).lower()}" />'
            '<messages maxClientsMessage="The site is full.&#10;Try again later." />'
        ),
    )
    first = RawControl(server.host, server.port)
    first.login()
    # The refusal is all the greeting there is; with resetOnMaxConnections, not a word.
    try:
        second = socket.create_connection((server.host, server.port), timeout=20)
    except ConnectionResetError:
        # The server's reset can arrive before connect() returns (a busy
        # client CPU): that is the refusal too.
        assert reset_on_max
    else:
        assert closing_words(second) == (
            b"" if reset_on_max else b"421-The site is full.\r\n421 Try again later.\r\n"
        )
        second.close()
    assert first.code("NOOP") == 200  # the session inside is untouched
    assert first.code("QUIT") == 221
    first.close()
    server.process.wait_for_log(r"session 1 from \S+ closed")
    third = RawControl(server.host, server.port)
    assert third.greeting[0] == 220
    third.login("bob")
    third.close()


def test_unauthenticated_timeout(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN, extra='<connections unauthenticatedTimeout="1" />')
    client = RawControl(server.host, server.port, timeout=30)
    assert client.cmd("USER alice")[0] == 331  # still not authenticated
    # No command for a second: the server says so and hangs up.
    assert client.reply() == (421, "421 Timeout (1 seconds): closing control connection.")
    expect_closed(client)
    server.process.wait_for_log(r"session 1: idle timeout")


def test_control_channel_timeout_after_logon(start_server: Callable[..., Running]) -> None:
    server = start_server(**PLAIN, extra='<connections controlChannelTimeout="1" />')
    client = RawControl(server.host, server.port, timeout=30)
    client.login()
    assert client.reply() == (421, "421 Timeout (1 seconds): closing control connection.")
    expect_closed(client)


# -------------------------------------------------------- command filtering


def test_command_filtering(start_server: Callable[..., Running]) -> None:
    server, ports = start_sites(start_server, {
        "deny": {"security_extra": (
            '<commandFiltering maxCommandLine="40">'
            '<add command="SYST" allowed="false" /><add command="MKD" allowed="false" />'
            '<add command="EPSV" allowed="false" /></commandFiltering>'
        )},
        "allow": {"security_extra": (
            '<commandFiltering allowUnlisted="false">'
            '<add command="USER" allowed="true" /><add command="PASS" allowed="true" />'
            '<add command="PWD" allowed="true" /><add command="NOOP" allowed="true" />'
            '<add command="QUIT" allowed="true" /></commandFiltering>'
        )},
    })
    deny = RawControl(server.host, ports["deny"])
    assert deny.cmd("SYST") == (502, "502 Command not allowed by policy.")
    assert deny.cmd("CWD " + "x" * 40) == (500, "500 Command line too long.")
    deny.login()
    assert deny.code("MKD new") == 502
    assert deny.code("XMKD new") == 502  # an alias cannot get round the filter
    assert deny.code("EPSV") == 502
    features = deny.cmd("FEAT")[1]
    assert "EPSV" not in features and "EPRT" in features
    assert deny.code("PASV") == 227
    assert not (server.root / "new").exists()
    deny.close()
    allow = RawControl(server.host, ports["allow"])
    allow.login()
    assert allow.cmd("PWD")[0] == 257
    for line in ("SYST", "FEAT", "LIST", "RETR hello.txt", "CWD /", "XPWD", "HELP", "PASV"):
        assert allow.code(line) == 502, line
    assert allow.code("NOOP") == 200
    allow.close()


# ----------------------------------------------------------- listing styles


def test_directory_browse_styles(start_server: Callable[..., Running], tmp_path: Path) -> None:
    pub = tmp_path / "pub-folder"
    pub.mkdir()
    (pub / "shared.txt").write_bytes(b"shared\n")
    vdirs = [("/pub", str(pub))]
    server, ports = start_sites(start_server, {
        "msdos": {"vdirs": vdirs},
        "long": {"vdirs": vdirs, "extra": '<directoryBrowse showFlags="LongDate" />'},
        "unix": {"vdirs": vdirs, "extra": '<directoryBrowse showFlags="StyleUnix" />'},
        "vdirs": {"vdirs": vdirs,
                  "extra": '<directoryBrowse showFlags="DisplayVirtualDirectories" />'},
        "free": {"vdirs": vdirs, "extra": '<directoryBrowse showFlags="DisplayAvailableBytes" />'},
    }, files={"hello.txt": b"Hello, world!\n", "sub/inner.txt": b"x"})
    expected = {
        "msdos": (r"\d\d-\d\d-\d\d  \d\d:\d\d[AP]M {19}14 hello\.txt",
                  r"\d\d-\d\d-\d\d  \d\d:\d\d[AP]M       <DIR>          sub"),
        "long": (r"\d\d-\d\d-\d{4}  \d\d:\d\d[AP]M {19}14 hello\.txt",
                 r"\d\d-\d\d-\d{4}  \d\d:\d\d[AP]M       <DIR>          sub"),
        "unix": (r"-r[-w]-r--r-- +\d+ owner +group +14 [A-Z][a-z]{2} [ \d]\d (\d\d:\d\d| \d{4}) "
                 r"hello\.txt",
                 r"dr[-w]xr-xr-x +\d+ owner +group +\d+ [A-Z][a-z]{2} [ \d]\d "
                 r"(\d\d:\d\d| \d{4}) sub"),
    }
    for name, (file_line, dir_line) in expected.items():
        client = plain_login(server, ports[name])
        lines, _ = listing(client)
        assert any(re.fullmatch(file_line, line) for line in lines), (name, lines)
        assert any(re.fullmatch(dir_line, line) for line in lines), (name, lines)
        # Without DisplayVirtualDirectories LIST shows only what is on disk ...
        assert not any(line.endswith(" pub") for line in lines), (name, lines)
        # ... while NLST and MLSD name the virtual directory, and it can be entered.
        assert "pub" in client.nlst()
        assert dict(client.mlsd())["pub"]["type"] == "dir"
        client.cwd("pub")
        assert client.nlst() == ["shared.txt"]
        client.quit()
    client = plain_login(server, ports["vdirs"])
    lines, _ = listing(client)
    assert any(re.fullmatch(r".*<DIR> +pub", line) for line in lines), lines
    client.quit()
    client = plain_login(server, ports["free"])
    lines, final = listing(client)
    assert re.fullmatch(r"226-[\d,]+ bytes free\.\n226 Transfer complete\.", final), final
    assert any(line.endswith(" hello.txt") for line in lines)
    client.quit()


# ---------------------------------------------------- virtual directories


def test_virtual_directories_and_nothing_outside(
    start_server: Callable[..., Running], tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    pub = tmp_path / "pub-folder"
    (pub / "docs").mkdir(parents=True)
    (pub / "shared.txt").write_bytes(b"shared\n")
    (pub / "docs" / "manual.txt").write_bytes(b"manual\n")
    os.symlink(str(outside), str(pub / "escape"))
    os.symlink(str(outside / "secret.txt"), str(pub / "secret-link.txt"))
    deep = tmp_path / "deep-folder"
    deep.mkdir()
    (deep / "deep.txt").write_bytes(b"deep\n")
    server = start_server(
        vdirs=[("/pub", str(pub)), ("/pub/docs/more", str(deep))],
        extra='<directoryBrowse showFlags="DisplayVirtualDirectories" />',
    )
    client = server.ftps()
    assert "pub" in client.nlst()
    client.cwd("/pub")
    assert client.pwd() == "/pub"
    assert sorted(client.nlst()) == ["docs", "shared.txt"]  # the escaping links are hidden
    out = io.BytesIO()
    client.retrbinary("RETR shared.txt", out.write)
    assert out.getvalue() == b"shared\n"
    assert sorted(client.nlst("docs")) == ["manual.txt", "more"]
    out = io.BytesIO()
    client.retrbinary("RETR /pub/docs/more/deep.txt", out.write)
    assert out.getvalue() == b"deep\n"
    client.storbinary("STOR uploaded.txt", io.BytesIO(b"into the vdir"))
    assert (pub / "uploaded.txt").read_bytes() == b"into the vdir"
    client.cwd("..")
    assert client.pwd() == "/"
    for name in ("/pub/../../outside/secret.txt", "/pub/escape/secret.txt",
                 "/pub/secret-link.txt", "../outside/secret.txt", "/pub/docs/more/../../../x"):
        with pytest.raises(ftplib.error_perm, match="^55"):
            client.retrbinary(f"RETR {name}", lambda _: None)
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.cwd("/pub/escape")
    with pytest.raises(ftplib.error_perm, match="^55"):
        client.storbinary("STOR /pub/escape/planted.txt", io.BytesIO(b"x"))
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    client.quit()


# ---------------------------------------------------------- user isolation


def test_user_isolation_modes(start_server: Callable[..., Running], tmp_path: Path) -> None:
    pub = tmp_path / "global"
    pub.mkdir()
    (pub / "global.txt").write_bytes(b"global\n")
    server, ports = start_sites(start_server, {
        "start": {"extra": '<userIsolation mode="StartInUsersDirectory" />'},
        "all": {"extra": '<userIsolation mode="IsolateAllDirectories" />',
                "vdirs": [("/pub", str(pub))]},
        "rootonly": {"extra": '<userIsolation mode="IsolateRootDirectoryOnly" />',
                     "vdirs": [("/pub", str(pub))]},
    }, files={
        "hello.txt": b"Hello, world!\n",
        "alice/start.txt": b"start\n",
        "LocalUser/alice/mine.txt": b"mine\n",
    })
    # StartInUsersDirectory: alice starts in /alice but may leave it; bob has no folder.
    client = plain_login(server, ports["start"])
    assert client.pwd() == "/alice"
    assert client.nlst() == ["start.txt"]
    client.cwd("/")
    assert "hello.txt" in client.nlst()
    client.quit()
    client = plain_login(server, ports["start"], "bob")
    assert client.pwd() == "/"
    client.quit()
    # IsolateAllDirectories: alice's folder is all there is.
    client = plain_login(server, ports["all"])
    assert client.pwd() == "/"
    assert client.nlst() == ["mine.txt"]
    client.cwd("..")
    assert client.pwd() == "/"
    for name in ("/hello.txt", "../../hello.txt", "/LocalUser/alice/mine.txt", "/pub/global.txt"):
        with pytest.raises(ftplib.error_perm, match="^55"):
            client.retrbinary(f"RETR {name}", lambda _: None)
    client.storbinary("STOR new.txt", io.BytesIO(b"new"))
    assert (server.root / "LocalUser" / "alice" / "new.txt").read_bytes() == b"new"
    client.quit()
    # A user without a folder cannot log on at all.
    client = server.plain(ports["all"])
    with pytest.raises(ftplib.error_perm) as refused:
        client.login("bob", "bob-pw")
    assert str(refused.value) == "530 User cannot log in, home directory inaccessible."
    client.close()
    # IsolateRootDirectoryOnly: the user's folder is the root, global vdirs stay reachable.
    client = plain_login(server, ports["rootonly"])
    assert "mine.txt" in client.nlst() and "hello.txt" not in client.nlst()
    out = io.BytesIO()
    client.retrbinary("RETR /pub/global.txt", out.write)
    assert out.getvalue() == b"global\n"
    client.quit()
    server.process.wait_for_log(r"logon of 'bob' .* failed: .*")


# ----------------------------------------------------------- file handling


def test_allow_replace_on_rename(start_server: Callable[..., Running]) -> None:
    server, ports = start_sites(start_server, {
        "strict": {},
        "replace": {"extra": '<fileHandling allowReplaceOnRename="true" />'},
    }, files={"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"})
    client = plain_login(server, ports["strict"])
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.rename("a.txt", "b.txt")
    assert (server.root / "a.txt").read_bytes() == b"A"
    assert (server.root / "b.txt").read_bytes() == b"B"
    client.rename("a.txt", "new.txt")  # onto nothing is always fine
    client.quit()
    client = plain_login(server, ports["replace"])
    client.rename("c.txt", "b.txt")
    assert (server.root / "b.txt").read_bytes() == b"C"
    assert not (server.root / "c.txt").exists()
    client.quit()


def test_keep_partial_uploads_after_abor(start_server: Callable[..., Running]) -> None:
    server, ports = start_sites(start_server, {
        "discard": {},
        "keep": {"extra": '<fileHandling keepPartialUploads="true" />'},
    })
    payload = bytes(range(256)) * 4096
    for site in ("discard", "keep"):
        client = RawControl(server.host, ports[site])
        client.login()
        data = client.epsv()
        assert client.cmd(f"STOR {site}.bin")[0] == 150
        data.sendall(payload)
        code, text = client.cmd("STAT")
        while "0 bytes transferred" in text:
            code, text = client.cmd("STAT")
        assert client.cmd("ABOR")[0] == 426
        assert client.reply() == (226, "226 ABOR command successful.")
        reset(data)
        fate = "kept" if site == "keep" else "discarded"
        server.process.wait_for_log(rf"STOR /{site}\.bin ended without a clean close .* {fate}")
        assert client.code("NOOP") == 200
        client.close()
    assert not (server.root / "discard.bin").exists()
    kept = (server.root / "keep.bin").read_bytes()
    assert kept and payload.startswith(kept)
    assert not [p for p in os.listdir(server.root) if p.startswith(".ftps7-part-")]


# --------------------------------------------------------------- anonymous


def test_anonymous_logon(start_server: Callable[..., Running]) -> None:
    anon_port = free_port()
    main_port = free_port()
    sites = [
        SiteSpec(name="Anon", id=1, bindings=[f"ftp:127.0.0.1:{anon_port}:"], anonymous=True,
                 **PLAIN),
        SiteSpec(name="Members", id=2, bindings=[f"ftp:127.0.0.1:{main_port}:"], **PLAIN),
    ]
    locations = (
        location("Anon", "", rule(users="?", permissions="Read"), rule(roles="ftpusers"))
        + location("Members", "", rule(roles="ftpusers"))
    )
    server = start_server(sites=sites, locations=locations)
    for name in ("anonymous", "ftp", "Anonymous"):
        client = server.plain(anon_port)
        assert client.sendcmd(f"USER {name}") == ANONYMOUS_PROMPT
        assert client.sendcmd("PASS guest@example.com").startswith("230")
        out = io.BytesIO()
        client.retrbinary("RETR hello.txt", out.write)
        assert out.getvalue() == b"Hello, world!\n"
        with pytest.raises(ftplib.error_perm, match="^550"):
            client.storbinary("STOR anon.txt", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="^550"):
            client.mkd("anon-dir")
        client.quit()
    server.process.wait_for_log(r"logged on to site Anon")
    # Named users still log on to the anonymous site ...
    plain_login(server, anon_port).quit()
    # ... and where anonymous logons are off, "anonymous" is just an unknown user.
    client = server.plain(main_port)
    assert client.sendcmd("USER anonymous") == "331 Password required"
    with pytest.raises(ftplib.error_perm, match="^530"):
        client.sendcmd("PASS guest@example.com")
    client.close()
    assert not (server.root / "anon.txt").exists()


# ------------------------------------------------------- address security


def test_deny_by_failure_locks_the_address_out(start_server: Callable[..., Running]) -> None:
    server = start_server(
        **PLAIN,
        system_ftp=(
            '<security><authentication><denyByFailure enabled="true" maxFailure="2" '
            'entryExpiration="00:05:00" /></authentication></security>'
        ),
    )
    for _ in range(2):
        client = RawControl(server.host, server.port)
        assert client.code("USER alice") == 331
        assert client.code("PASS wrong") == 530
        client.close()
    server.process.wait_for_log("address 127.0.0.1 locked out")
    locked = socket.create_connection((server.host, server.port), timeout=20)
    assert closing_words(locked) == (
        b"421 Access denied for your address; closing control connection.\r\n"
    )
    locked.close()
    # Another address is not affected.
    other = RawControl(server.host, server.port, source="127.0.0.2")
    other.login()
    assert other.code("NOOP") == 200
    other.close()


def test_ip_security(start_server: Callable[..., Running]) -> None:
    server = start_server(
        **PLAIN,
        system_ftp=(
            '<security><ipSecurity allowUnlisted="false">'
            '<add ipAddress="127.0.0.1" allowed="true" />'
            '<add ipAddress="127.0.0.0" subnetMask="255.0.0.0" allowed="false" />'
            '<add ipAddress="127.0.0.4" subnetMask="255.255.255.252" allowed="true" />'
            "</ipSecurity></security>"
        ),
    )
    allowed = RawControl(server.host, server.port)
    allowed.login()
    for source in ("127.0.0.2", "127.0.0.9"):
        denied = socket.create_connection((server.host, server.port), timeout=20,
                                          source_address=(source, 0))
        assert closing_words(denied) == (
            b"421 Access denied for your address; closing control connection.\r\n"
        )
        denied.close()
    server.process.wait_for_log(r"connection from 127\.0\.0\.2 refused by ipSecurity")
    # The most specific entry wins: 127.0.0.4/30 is allowed inside the denied 127/8.
    subnet = RawControl(server.host, server.port, source="127.0.0.6")
    subnet.login("bob")
    subnet.close()
    assert allowed.code("NOOP") == 200
    allowed.close()


# --------------------------------------------------- authorization rules


def test_location_rules_deny_wins_and_clear(start_server: Callable[..., Running]) -> None:
    site = "Test Site"
    locations = (
        location(site, "", rule(roles="ftpusers"), rule(roles="readers", permissions="Read"))
        + location(site, "private", rule(users="alice", access="Deny", permissions="Read"))
        + location(site, "both", rule(users="alice", permissions="Read, Write"),
                   rule(roles="ftpusers", access="Deny", permissions="Write"))
        + location(site, "open", rule(users="bob", permissions="Read, Write"), clear=True)
    )
    server = start_server(locations=locations, files={
        "hello.txt": b"Hello, world!\n",
        "private/p.txt": b"private\n",
        "both/b.txt": b"both\n",
        "open/o.txt": b"open\n",
    })
    alice = server.ftps()
    # /private: alice's Read is denied (Write, from the site rule, is not).
    with pytest.raises(ftplib.error_perm, match="^550"):
        alice.retrbinary("RETR private/p.txt", lambda _: None)
    with pytest.raises(ftplib.error_perm, match="^550"):
        alice.nlst("private")
    alice.storbinary("STOR private/dropbox.txt", io.BytesIO(b"drop"))
    assert (server.root / "private" / "dropbox.txt").read_bytes() == b"drop"
    # /both: an Allow for alice by name and a Deny for her group: Deny wins.
    out = io.BytesIO()
    alice.retrbinary("RETR both/b.txt", out.write)
    assert out.getvalue() == b"both\n"
    with pytest.raises(ftplib.error_perm, match="^550"):
        alice.storbinary("STOR both/nope.txt", io.BytesIO(b"x"))
    # /open cleared the inherited rules: only bob is in there.
    with pytest.raises(ftplib.error_perm, match="^550"):
        alice.cwd("open")
    with pytest.raises(ftplib.error_perm, match="^550"):
        alice.retrbinary("RETR open/o.txt", lambda _: None)
    alice.quit()
    bob = server.ftps(user="bob")
    out = io.BytesIO()
    bob.retrbinary("RETR private/p.txt", out.write)
    assert out.getvalue() == b"private\n"
    with pytest.raises(ftplib.error_perm, match="^550"):
        bob.storbinary("STOR hello.txt", io.BytesIO(b"x"))
    bob.storbinary("STOR open/bob.txt", io.BytesIO(b"bob"))
    assert (server.root / "open" / "bob.txt").read_bytes() == b"bob"
    bob.quit()
    assert not (server.root / "both" / "nope.txt").exists()
    assert (server.root / "hello.txt").read_bytes() == b"Hello, world!\n"


def test_third_party_checker_from_auth_option(
    start_server: Callable[..., Running], tmp_path: Path,
) -> None:
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("carol:carol-pw\ndave:dave-pw\n")
    site = "Test Site"
    server = start_server(
        extra_args=("--auth", f"file:{passwords}"),
        locations=location(
            site, "", rule(roles="ftpusers"), rule(users="carol", permissions="Read")
        ),
    )
    client = server.ftps(login=False)
    client.auth()
    assert client.login("carol", "carol-pw").startswith("230")
    client.prot_p()
    out = io.BytesIO()
    client.retrbinary("RETR hello.txt", out.write)
    assert out.getvalue() == b"Hello, world!\n"
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.storbinary("STOR carol.txt", io.BytesIO(b"x"))
    client.quit()
    server.process.wait_for_log(r"carol logged on to site Test Site")
    # dave's password is right but no rule lets him onto the site; a wrong
    # password is refused; and the local accounts still work beside the plugin.
    for user, password in (("dave", "dave-pw"), ("carol", "wrong")):
        client = server.ftps(login=False)
        client.auth()
        with pytest.raises(ftplib.error_perm, match="^530"):
            client.login(user, password)
        client.close()
    server.ftps().quit()
    assert "carol-pw" not in server.process.log


def test_allowed_file_extensions_leave_folders_usable(
    start_server: Callable[..., Running],
) -> None:
    """IIS's whitelist form of fileExtensions restricts files, not folders."""
    server = start_server(
        files={"hello.txt": b"hi\n", "tool.exe": b"MZ", "docs/in.txt": b"in\n"},
        system_ftp=(
            '<security><requestFiltering><fileExtensions allowUnlisted="false">'
            '<add fileExtension=".txt" allowed="true" />'
            "</fileExtensions></requestFiltering></security>"
        ),
    )
    client = server.ftps()
    assert sorted(name for name, _ in client.mlsd()) == [".", "docs", "hello.txt"]
    assert client.cwd("docs").startswith("250")
    assert client.nlst() == ["in.txt"]
    client.cwd("/")
    assert client.mkd("new") == "/new"
    client.rmd("new")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.retrbinary("RETR tool.exe", io.BytesIO().write)
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.storbinary("STOR up.exe", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.rename("hello.txt", "hello.exe")
    client.quit()
