"""End-to-end FTP behaviour against a real twistd process, with Python's ftplib."""

from __future__ import annotations

import ftplib
import io
import os

import pytest

from tests.integration.conftest import Running


def test_greeting_feat_and_login(server: Running) -> None:
    client = server.ftps(login=False)
    assert client.getwelcome().startswith("220")
    feat = client.sendcmd("FEAT")
    lines = feat.splitlines()
    assert lines[0].startswith("211-") and lines[-1].startswith("211 ")
    features = {line.strip() for line in lines[1:-1]}
    for expected in ("AUTH TLS", "AUTH SSL", "PBSZ", "PROT", "CCC", "EPSV", "EPRT", "HOST",
                     "MDTM", "REST STREAM", "SIZE", "UTF8", "TVFS"):
        assert expected in features
    assert any(f.startswith("MLST type*;size*;modify*;perm*;unique*;") for f in features)
    assert "FEAT" not in features
    assert all(line.startswith(" ") for line in lines[1:-1])
    client.auth()
    assert client.login("alice", "alice-pw").startswith("230")
    assert client.pwd() == "/"
    client.quit()


def test_bad_password_is_530(server: Running) -> None:
    client = server.ftps(login=False)
    client.auth()
    with pytest.raises(ftplib.error_perm, match="530"):
        client.login("alice", "wrong")
    client.close()
    server.process.wait_for_log("logon of 'alice' from 127.0.0.1 to site Test Site failed")
    assert "wrong" not in server.process.log


def test_download_upload_resume_append_rename_delete(server: Running) -> None:
    client = server.ftps()
    data = os.urandom(300_000)
    client.storbinary("STOR big.bin", io.BytesIO(data))
    assert (server.root / "big.bin").read_bytes() == data
    assert client.size("big.bin") == len(data)
    out = io.BytesIO()
    client.retrbinary("RETR big.bin", out.write)
    assert out.getvalue() == data
    # REST + RETR
    out = io.BytesIO()
    client.retrbinary("RETR big.bin", out.write, rest=100_000)
    assert out.getvalue() == data[100_000:]
    # APPE
    client.storbinary("APPE big.bin", io.BytesIO(b"tail"))
    assert (server.root / "big.bin").read_bytes() == data + b"tail"
    # REST + STOR replaces from the offset
    client.storbinary("STOR big.bin", io.BytesIO(b"XYZ"), rest=10)
    assert (server.root / "big.bin").read_bytes() == data[:10] + b"XYZ"
    client.rename("big.bin", "renamed.bin")
    assert (server.root / "renamed.bin").exists() and not (server.root / "big.bin").exists()
    client.delete("renamed.bin")
    assert not (server.root / "renamed.bin").exists()
    assert client.mkd("newdir") == "/newdir"
    client.cwd("newdir")
    assert client.pwd() == "/newdir"
    client.cwd("..")
    client.rmd("newdir")
    assert not (server.root / "newdir").exists()
    assert not [p for p in os.listdir(server.root) if p.startswith(".ftps7-part-")]
    client.quit()


def test_listings(server: Running) -> None:
    (server.root / "sub").mkdir()
    (server.root / "sub" / "inner.txt").write_bytes(b"x" * 10)
    client = server.ftps()
    lines: list[str] = []
    client.retrlines("LIST", lines.append)
    assert any(line.endswith(" hello.txt") for line in lines)
    assert any("<DIR>" in line and line.endswith(" sub") for line in lines)
    assert sorted(client.nlst()) == ["hello.txt", "sub"]
    entries = dict(client.mlsd())
    assert entries["hello.txt"]["type"] == "file" and entries["hello.txt"]["size"] == "14"
    assert entries["sub"]["type"] == "dir"
    assert entries["."]["type"] == "cdir"
    assert "r" in entries["hello.txt"]["perm"] and "w" in entries["hello.txt"]["perm"]
    reply = client.sendcmd("MLST sub/inner.txt")
    assert "size=10;" in reply and "/sub/inner.txt" in reply
    assert client.sendcmd("MDTM hello.txt").startswith("213 ")
    client.quit()


def test_read_only_user_cannot_write(server: Running) -> None:
    client = server.ftps(user="bob")
    out = io.BytesIO()
    client.retrbinary("RETR hello.txt", out.write)
    assert out.getvalue() == b"Hello, world!\n"
    with pytest.raises(ftplib.error_perm, match="550"):
        client.storbinary("STOR nope.txt", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="550"):
        client.delete("hello.txt")
    assert "w" not in dict(client.mlsd())["hello.txt"]["perm"]
    client.quit()


def test_traversal_is_clamped_to_the_root(server: Running) -> None:
    outside = server.workdir / "secret.txt"
    outside.write_text("secret")
    os.symlink(str(server.workdir), str(server.root / "escape"))
    client = server.ftps()
    client.cwd("../../..")
    assert client.pwd() == "/"
    for name in ("../secret.txt", "/../secret.txt", "../../../../etc/passwd", "escape/secret.txt"):
        with pytest.raises(ftplib.error_perm, match="55"):
            client.retrbinary(f"RETR {name}", lambda _: None)
    with pytest.raises(ftplib.error_perm, match="550"):
        client.cwd("escape")
    with pytest.raises(ftplib.error_perm, match="55"):
        client.storbinary("STOR escape/planted.txt", io.BytesIO(b"x"))
    assert "escape" not in client.nlst()
    assert not (server.workdir / "planted.txt").exists()
    client.quit()


def test_utf8_names(server: Running) -> None:
    client = server.ftps()
    client.encoding = "utf-8"
    client.storbinary("STOR héllo wörld ✓.txt", io.BytesIO(b"utf8"))
    assert (server.root / "héllo wörld ✓.txt").read_bytes() == b"utf8"
    assert "héllo wörld ✓.txt" in client.nlst()
    assert client.size("héllo wörld ✓.txt") == 4
    client.quit()


def test_ascii_type_converts_line_ends(server: Running) -> None:
    (server.root / "text.txt").write_bytes(b"one\ntwo\n")
    client = server.ftps()
    lines: list[str] = []
    client.sendcmd("TYPE A")
    with client.transfercmd("RETR text.txt") as conn:
        data = b""
        while chunk := conn.recv(8192):
            data += chunk
        conn.unwrap()
    client.voidresp()
    assert data == b"one\r\ntwo\r\n"
    client.storlines("STOR up.txt", io.BytesIO(b"a\r\nb\r\n"))
    assert (server.root / "up.txt").read_bytes() == b"a\nb\n"
    del lines
    client.quit()


def test_stou_creates_a_unique_file(server: Running) -> None:
    client = server.ftps()
    conn = client.transfercmd("STOU")
    conn.sendall(b"unique")
    conn.unwrap()
    conn.close()
    reply = client.voidresp()
    assert reply.startswith("226")
    created = [p for p in os.listdir(server.root) if p.startswith("ftps7.")]
    assert len(created) == 1 and (server.root / created[0]).read_bytes() == b"unique"
    client.quit()


def test_a_proxy_protocol_that_trusts_nobody_is_announced(start_server) -> None:
    server = start_server(ftps7_extra='<proxyProtocol enabled="true" />')
    server.process.wait_for_log(
        "proxyProtocol enabled> without trustedProxies: no peer may send a PROXY header"
    )
