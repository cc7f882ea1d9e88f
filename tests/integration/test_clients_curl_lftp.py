"""Real clients against a real server: curl (OpenSSL) and lftp (GnuTLS).

Every run is explicit FTPS with the server certificate verified (its SAN holds
127.0.0.1 and ::1): curl ``--ssl-reqd --cacert``, lftp ``ssl:ca-file`` with
``ftp:ssl-force`` and ``ftp:ssl-protect-data``. Each command has a timeout and
its exit status and output are checked; the files on the server's disk are the
final judge.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import USERS, Running
from tests.integration.harness import ipv6_available

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

needs_lftp = pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")

BIG = bytes(range(256)) * 2000  # 512,000 bytes, position-dependent


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )


def curl(server: Running, *args: str, tls: bool = True, user: str = "alice",
         expect: int | tuple[int, ...] = 0) -> subprocess.CompletedProcess[str]:
    argv = ["curl", "-sS", "--max-time", "50", "--user", f"{user}:{USERS[user][0]}"]
    if tls:
        argv += ["--ssl-reqd", "--cacert", server.ca_file]
    result = _run([*argv, *args], server.workdir)
    expected = expect if isinstance(expect, tuple) else (expect,)
    assert result.returncode in expected, (result.returncode, result.stdout, result.stderr)
    return result


def url(server: Running, path: str = "/") -> str:
    host = f"[{server.host}]" if ":" in server.host else server.host
    return f"ftp://{host}:{server.port}{path}"


def lftp(server: Running, script: str, *, user: str = "alice", settings: str = "",
         expect: int = 0) -> subprocess.CompletedProcess[str]:
    host = f"[{server.host}]" if ":" in server.host else server.host
    prelude = (
        f"set ssl:ca-file {server.ca_file}; set ssl:verify-certificate true; "
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
        "set net:max-retries 1; set net:timeout 20; set net:reconnect-interval-base 1; "
        "set cmd:fail-exit yes; set xfer:clobber on; set cmd:interactive false; "
        f"{settings} open -u {user},{USERS[user][0]} ftp://{host}:{server.port}; "
    )
    result = _run(["lftp", "-d", "-c", prelude + script], server.workdir)
    assert result.returncode == expect, (result.returncode, result.stdout, result.stderr[-4000:])
    return result


def sent(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The commands a client sent, from its debug output (curl -v, lftp -d)."""
    commands = re.findall(r"^(?:> |---> )([A-Z]{3,4}\b.*)$", result.stderr, re.MULTILINE)
    return [line.strip() for line in commands]


def verbs(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split()[0] for line in sent(result)]


@pytest.fixture
def files(start_server: Callable[..., Running]) -> Running:
    return start_server(files={"hello.txt": b"Hello, world!\n", "big.bin": BIG})


# -------------------------------------------------------------------- curl


def test_curl_list_download_upload(files: Running) -> None:
    listing = curl(files, url(files)).stdout.splitlines()
    assert any(line.endswith(" hello.txt") and " 14 " in line for line in listing)
    assert any(line.endswith(" big.bin") for line in listing)
    assert sorted(curl(files, "--list-only", url(files)).stdout.split()) == ["big.bin", "hello.txt"]
    assert curl(files, url(files, "/hello.txt")).stdout == "Hello, world!\n"
    curl(files, "-o", "big.out", url(files, "/big.bin"))
    assert (files.workdir / "big.out").read_bytes() == BIG
    (files.workdir / "upload.bin").write_bytes(os.urandom(300_000))
    result = curl(files, "-v", "-T", "upload.bin", url(files, "/uploaded.bin"))
    assert (files.root / "uploaded.bin").read_bytes() == (files.workdir / "upload.bin").read_bytes()
    assert {"AUTH", "PBSZ", "PROT", "USER", "PASS", "EPSV", "STOR"} <= set(verbs(result))
    assert "PROT P" in sent(result)


def test_curl_resume_download_and_upload(files: Running) -> None:
    # Download: curl asks SIZE, then REST <local size> + RETR.
    (files.workdir / "partial.bin").write_bytes(BIG[:123_456])
    result = curl(files, "-v", "-C", "-", "-o", "partial.bin", url(files, "/big.bin"))
    assert "REST 123456" in sent(result)
    assert (files.workdir / "partial.bin").read_bytes() == BIG
    # Upload: curl asks SIZE of the remote file, then APPE the rest.
    (files.root / "resumed.bin").write_bytes(BIG[:200_000])
    (files.workdir / "whole.bin").write_bytes(BIG)
    result = curl(files, "-v", "-C", "-", "-T", "whole.bin", url(files, "/resumed.bin"))
    assert "SIZE resumed.bin" in sent(result) and "APPE resumed.bin" in sent(result)
    assert (files.root / "resumed.bin").read_bytes() == BIG


def test_curl_append(files: Running) -> None:
    (files.workdir / "tail.txt").write_bytes(b"and more\n")
    result = curl(files, "-v", "--append", "-T", "tail.txt", url(files, "/hello.txt"))
    assert "APPE hello.txt" in sent(result)
    assert (files.root / "hello.txt").read_bytes() == b"Hello, world!\nand more\n"
    # Appending to a file that does not exist creates it.
    curl(files, "--append", "-T", "tail.txt", url(files, "/fresh.txt"))
    assert (files.root / "fresh.txt").read_bytes() == b"and more\n"


def test_curl_quote_rename_delete_and_failures(files: Running) -> None:
    curl(files, "-Q", "-RNFR hello.txt", "-Q", "-RNTO renamed.txt", url(files))
    assert not (files.root / "hello.txt").exists()
    assert (files.root / "renamed.txt").read_bytes() == b"Hello, world!\n"
    curl(files, "-Q", "-DELE renamed.txt", url(files))
    assert not (files.root / "renamed.txt").exists()
    # A refused quote command fails the run (curl exit 21, "quote error").
    result = curl(files, "-Q", "DELE missing.txt", url(files), expect=21)
    assert "550" in result.stderr
    # bob may read but not write: his DELE is refused and the file stays.
    curl(files, "-Q", "DELE big.bin", url(files), user="bob", expect=21)
    assert (files.root / "big.bin").read_bytes() == BIG


def test_curl_creates_missing_directories(files: Running) -> None:
    (files.workdir / "deep.txt").write_bytes(b"deep\n")
    result = curl(files, "-v", "--ftp-create-dirs", "-T", "deep.txt", url(files, "/a/b/c/deep.txt"))
    assert (files.root / "a" / "b" / "c" / "deep.txt").read_bytes() == b"deep\n"
    assert {"MKD a", "MKD b", "MKD c"} <= set(sent(result))
    # Without the option, the missing directory is an error and nothing appears.
    curl(files, "-T", "deep.txt", url(files, "/x/y/deep.txt"), expect=9)
    assert not (files.root / "x").exists()


def test_curl_epsv_and_pasv(files: Running) -> None:
    result = curl(files, "-v", "--ftp-pasv", url(files, "/hello.txt"))
    assert result.stdout == "Hello, world!\n"
    assert "EPSV" in verbs(result) and "PASV" not in verbs(result)
    result = curl(files, "-v", "--disable-epsv", url(files, "/hello.txt"))
    assert result.stdout == "Hello, world!\n"
    assert "PASV" in verbs(result) and "EPSV" not in verbs(result)
    assert re.search(r"< 227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)", result.stderr)


def _curl_version() -> tuple[int, int]:
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    match = re.match(r"curl (\d+)\.(\d+)", out)
    assert match is not None, out
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("tls", [True, False], ids=["ftps", "plain"])
def test_curl_active_mode(start_server: Callable[..., Running], tls: bool) -> None:
    if tls and (7, 87) <= _curl_version() < (8, 0):
        pytest.skip("curl 7.87-7.88 never starts TLS on an active-mode data connection "
                    "(curl/curl#10666, fixed in 8.0); ftplib and lftp cover active FTPS")
    policies = {} if tls else {"control_policy": "SslAllow", "data_policy": "SslAllow"}
    server = start_server(**policies)
    result = curl(server, "-v", "-P", "127.0.0.1", url(server, "/hello.txt"), tls=tls)
    assert result.stdout == "Hello, world!\n"
    assert "EPRT" in verbs(result)
    (server.workdir / "up.txt").write_bytes(b"actively\n")
    result = curl(server, "-v", "--disable-eprt", "-P", "127.0.0.1", "-T", "up.txt",
                  url(server, "/up.txt"), tls=tls)
    assert "PORT" in verbs(result) and "EPRT" not in verbs(result)
    assert (server.root / "up.txt").read_bytes() == b"actively\n"


def test_curl_utf8_names(files: Running) -> None:
    (files.workdir / "local.txt").write_bytes(b"utf-8\n")
    curl(files, "-T", "local.txt", url(files, "/h%C3%A9llo%20w%C3%B6rld%20%E2%9C%93.txt"))
    assert (files.root / "héllo wörld ✓.txt").read_bytes() == b"utf-8\n"
    assert "héllo wörld ✓.txt" in curl(files, "--list-only", url(files)).stdout.splitlines()
    out = curl(files, url(files, "/h%C3%A9llo%20w%C3%B6rld%20%E2%9C%93.txt")).stdout
    assert out == "utf-8\n"


def test_curl_cannot_climb_out_of_the_root(files: Running) -> None:
    (files.workdir / "secret.txt").write_text("secret")
    for path in ("/../secret.txt", "/../../../../etc/passwd", "/%2E%2E/secret.txt"):
        # 9: CWD refused; 78: RETR of a file that is not there.
        result = curl(files, "--path-as-is", url(files, path), expect=(9, 78))
        assert "secret" not in result.stdout and "root:" not in result.stdout


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback (::1) here")
def test_curl_over_ipv6(start_server: Callable[..., Running]) -> None:
    server = start_server(host="::1")
    result = curl(server, "-g", "-v", url(server, "/hello.txt"))
    assert result.stdout == "Hello, world!\n"
    assert "EPSV" in verbs(result)
    (server.workdir / "six.txt").write_bytes(b"six\n")
    curl(server, "-g", "-T", "six.txt", url(server, "/six.txt"))
    assert (server.root / "six.txt").read_bytes() == b"six\n"


# -------------------------------------------------------------------- lftp


@needs_lftp
def test_lftp_session(files: Running) -> None:
    (files.workdir / "local.bin").write_bytes(BIG[:100_000])
    result = lftp(
        files,
        "ls; cls -1; cat hello.txt; get big.bin -o got.bin; put local.bin -o put.bin; "
        "mkdir newdir; mv put.bin newdir/moved.bin; ls newdir; rm hello.txt; "
        "mkdir gone; rmdir gone"
    )
    assert "Hello, world!" in result.stdout
    assert "moved.bin" in result.stdout
    assert (files.workdir / "got.bin").read_bytes() == BIG
    assert (files.root / "newdir" / "moved.bin").read_bytes() == BIG[:100_000]
    assert not (files.root / "hello.txt").exists() and not (files.root / "gone").exists()
    commands = sent(result)
    assert "AUTH TLS" in commands and "PROT P" in commands
    assert {"MLSD", "RETR", "STOR", "MKD", "RNFR", "RNTO", "DELE", "RMD"} <= set(verbs(result))
    assert "PROT C" not in commands


@needs_lftp
def test_lftp_resume_download_and_upload(files: Running) -> None:
    (files.workdir / "part.bin").write_bytes(BIG[:100_000])
    result = lftp(files, "get -c big.bin -o part.bin")
    assert "REST 100000" in sent(result)
    assert (files.workdir / "part.bin").read_bytes() == BIG
    (files.root / "up.bin").write_bytes(BIG[:300_000])
    (files.workdir / "whole.bin").write_bytes(BIG)
    result = lftp(files, "put -c whole.bin -o up.bin")
    # lftp resumes an upload with REST <remote size> + STOR (RFC 3659 §5).
    assert "REST 300000" in sent(result) and "STOR up.bin" in sent(result)
    assert (files.root / "up.bin").read_bytes() == BIG
    # Uploads too run on TLS 1.3 (its data tickets wait for the close: server/datatls.py).
    files.process.wait_for_log(r"logged on .*\(TLSv1\.3 ")


@needs_lftp
def test_lftp_active_mode(files: Running) -> None:
    (files.workdir / "active.bin").write_bytes(BIG[:50_000])
    result = lftp(files, "ls; get hello.txt -o hello.out; put active.bin",
                  settings="set ftp:passive-mode off;")
    assert (files.workdir / "hello.out").read_bytes() == b"Hello, world!\n"
    assert (files.root / "active.bin").read_bytes() == BIG[:50_000]
    assert {"PORT", "EPRT"} & set(verbs(result))
    assert not {"PASV", "EPSV"} & set(verbs(result))


@needs_lftp
def test_lftp_mirror_both_ways_with_utf8_names(files: Running) -> None:
    tree = {
        "docs/readme.txt": b"read me\n",
        "docs/ünïcödé ✓.txt": "ünïcödé\n".encode(),
        "docs/sub/deep.bin": BIG[:70_000],
        "docs/empty.txt": b"",
    }
    for relative, data in tree.items():
        path = files.workdir / "up" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    lftp(files, "mirror -R up/docs docs")
    lftp(files, "mirror docs down")
    for relative, data in tree.items():
        assert (files.root / relative).read_bytes() == data, relative
        assert (files.workdir / "down" / relative.removeprefix("docs/")).read_bytes() == data
    assert not [p for p in os.listdir(files.root / "docs") if p.startswith(".ftps7-part-")]


@needs_lftp
def test_lftp_read_only_user(files: Running) -> None:
    (files.workdir / "x.txt").write_bytes(b"x")
    result = lftp(files, "cat hello.txt; put x.txt", user="bob", expect=1)
    assert "Hello, world!" in result.stdout
    assert "550" in result.stderr
    assert not (files.root / "x.txt").exists()
