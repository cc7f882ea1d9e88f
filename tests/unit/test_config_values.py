"""Attribute value types and collection operations in isolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftps7.config import ConfigErrors, load_config
from ftps7.config import model as m
from ftps7.config.bindings import parse_binding_information
from ftps7.config.values import (
    BadValueError,
    Bool,
    EnumOf,
    FlagsOf,
    Integer,
    Seconds,
    SubnetMask,
    Thumbprint,
    TimeSpan,
    ValueContext,
    normalize_ftp_path,
)
from ftps7.config.values import (
    Path as PathType,
)

CTX = ValueContext("/etc/ftps7", {"HOME": "/home/ftp"}, lambda message: None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:00", 0.0),
        ("00:01:00", 60.0),
        ("1:02:03", 3723.0),
        ("2.00:00:30", 172830.0),
        (" 00:00:01.5 ", 1.5),
    ],
)
def test_time_spans(text: str, seconds: float) -> None:
    assert TimeSpan().parse(text, CTX) == seconds


@pytest.mark.parametrize("text", ["60", "24:00:00", "00:60:00", "1:2", "-00:00:01", "1 day"])
def test_bad_time_spans(text: str) -> None:
    with pytest.raises(BadValueError) as caught:
        TimeSpan().parse(text, CTX)
    assert caught.value.accepted == ("hh:mm:ss", "d.hh:mm:ss")


def test_seconds_and_integers() -> None:
    assert Seconds(0, 65535).parse("120", CTX) == 120.0
    assert Integer(1024, 65535, also=(0,)).parse("0", CTX) == 0
    for bad in ("-1", "1.5", "0x10", "", "1023"):
        with pytest.raises(BadValueError):
            Integer(1024, 65535, also=(0,)).parse(bad, CTX)


def test_booleans_and_enums_ignore_case() -> None:
    assert Bool().parse("TRUE", CTX) is True
    assert Bool().parse(" False ", CTX) is False
    assert EnumOf(m.DataChannelPolicy).parse("ssldeny", CTX) is m.DataChannelPolicy.SSL_DENY
    with pytest.raises(BadValueError):
        Bool().parse("1", CTX)


def test_flags_are_comma_separated_and_ignore_case() -> None:
    flags = FlagsOf(m.VALIDATION_FLAG_NAMES, m.ValidationFlags.NONE)
    assert flags.parse("", CTX) is m.ValidationFlags.NONE
    assert flags.parse("norevocationcheck ,CertNoUsageCheck,", CTX) == (
        m.ValidationFlags.NO_REVOCATION_CHECK | m.ValidationFlags.CERT_NO_USAGE_CHECK
    )


def test_ignored_flag_warns() -> None:
    warned: list[str] = []
    ctx = ValueContext("/", {}, warned.append)
    flags = FlagsOf(m.SHOW_FLAG_NAMES, m.ShowFlags.NONE, ignored=("UseGmtTime",))
    assert flags.parse("usegmttime, StyleUnix", ctx) == m.ShowFlags.STYLE_UNIX
    assert warned and "UseGmtTime" in warned[0]


@pytest.mark.parametrize(
    "text",
    [
        "57686f6120447564652c2049495320526f636b73",
        "57 68 6F 61 20 44 75 64 65 2C 20 49 49 53 20 52 6F 63 6B 73",
        "\u200e57:68:6f:61:20:44:75:64:65:2c:20:49:49:53:20:52:6f:63:6b:73\u200e",
    ],
)
def test_thumbprints(text: str) -> None:
    assert Thumbprint().parse(text, CTX) == "57686F6120447564652C2049495320526F636B73"


def test_empty_thumbprint_means_no_certificate() -> None:
    assert Thumbprint().parse("  ", CTX) is None
    with pytest.raises(BadValueError):
        Thumbprint().parse("57686f6120447564652c2049495320526f636b", CTX)  # 39 digits


def test_paths() -> None:
    assert PathType().parse("users", CTX) == "/etc/ftps7/users"
    assert PathType().parse("%HOME%/x/../y", CTX) == "/home/ftp/y"
    assert PathType().parse("/abs", CTX) == "/abs"
    assert PathType(empty_none=True).parse("", CTX) is None
    with pytest.raises(BadValueError, match="unknown environment variable %NOPE%"):
        PathType().parse("%NOPE%/x", CTX)
    assert PathType().parse("50%", CTX) == "/etc/ftps7/50%"


def test_directory_must_exist(tmp_path: Path) -> None:
    ctx = ValueContext(str(tmp_path), {}, lambda message: None)
    (tmp_path / "d").mkdir()
    assert PathType(must_be_dir=True).parse("d", ctx) == str(tmp_path / "d")
    with pytest.raises(BadValueError, match="does not exist"):
        PathType(must_be_dir=True).parse("e", ctx)


def test_ftp_paths() -> None:
    assert normalize_ftp_path("/") == "/"
    assert normalize_ftp_path("//a//b/") == "/a/b"
    for bad in ("a", "/a/../b", "/./x", "/a\\b"):
        with pytest.raises(BadValueError):
            normalize_ftp_path(bad)


def test_subnet_masks() -> None:
    assert SubnetMask().parse("255.255.0.0", CTX) == "255.255.0.0"
    assert SubnetMask().parse("24", CTX) == "24"
    for bad in ("255.0.255.0", "129", "mask"):
        with pytest.raises(BadValueError):
            SubnetMask().parse(bad, CTX)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("*:21:", ("*", 21, "")),
        ("127.0.0.1:2121:FTP.Example.com", ("127.0.0.1", 2121, "ftp.example.com")),
        ("[::1]:990:", ("::1", 990, "")),
        ("[2001:DB8::0001]:21:h", ("2001:db8::1", 21, "h")),
    ],
)
def test_binding_information(text: str, parsed: tuple[str, int, str]) -> None:
    assert parse_binding_information(text) == parsed


@pytest.mark.parametrize("text", ["*:0:", "*:21", ":21:", "localhost:21:", "[::1]21:", "*:21:a|b"])
def test_bad_binding_information(text: str) -> None:
    with pytest.raises(BadValueError):
        parse_binding_information(text)


# --------------------------------------------------------------------------
# Collection operations through a whole file


def _load(tmp_path: Path, server: str) -> m.ServerConfig:
    (tmp_path / "r").mkdir(exist_ok=True)
    text = f"""<configuration>
  <system.applicationHost><sites>
    <site name="S" id="1">
      <application path="/"><virtualDirectory path="/" physicalPath="r" /></application>
      <bindings><binding protocol="ftp" bindingInformation="*:2121:" /></bindings>
    </site>
  </sites></system.applicationHost>
  <system.ftpServer>{server}</system.ftpServer>
</configuration>"""
    path = tmp_path / "c.config"
    path.write_text(text)
    return load_config(str(path), environ={})


def test_remove_and_clear_in_one_collection(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """<security><requestFiltering><fileExtensions>
             <add fileExtension=".a" /><add fileExtension=".b" allowed="false" />
             <remove fileExtension="A" />
             <add fileExtension=".c" />
           </fileExtensions>
           <hiddenSegments><add segment="x" /><clear /><add segment="y" /></hiddenSegments>
           </requestFiltering></security>""",
    )
    filtering = config.server.request_filtering
    assert filtering.file_extensions == (
        m.FileExtensionRule(".b", False),
        m.FileExtensionRule(".c", True),
    )
    assert filtering.hidden_segments == ("y",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<remove />", "must name the entry"),
        ('<remove allowed="true" />', "unknown attribute"),
        ('<clear command="x" />', "takes no attributes"),
    ],
)
def test_bad_collection_operations(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _load(
            tmp_path,
            f"""<security><ipSecurity><add ipAddress="10.0.0.1" />{body}</ipSecurity></security>""",
        )
    (error,) = caught.value.errors
    assert message in error.message


def test_location_for_every_site_conflicts_with_top_level_rules(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    rules = """<system.ftpServer><security><authorization>
      <add accessType="Allow" users="*" permissions="Read" />
    </authorization></security></system.ftpServer>"""
    text = f"""<configuration>
  <system.applicationHost><sites>
    <site name="S" id="1">
      <application path="/"><virtualDirectory path="/" physicalPath="r" /></application>
      <bindings><binding protocol="ftp" bindingInformation="*:2121:" /></bindings>
    </site>
  </sites></system.applicationHost>
  {rules}
  <location path="">{rules}</location>
</configuration>"""
    path = tmp_path / "c.config"
    path.write_text(text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(str(path), environ={})
    (error,) = caught.value.errors
    assert "already defined at line 8" in error.message
