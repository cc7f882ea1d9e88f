"""``ftps7 config check [PATH]`` through the real dispatcher."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

import ftps7.cli
from ftps7.cli import main

VALID = """<configuration>
  <system.applicationHost><sites>
    <site name="Checked Site" id="3">
      <application path="/"><virtualDirectory path="/" physicalPath="root" /></application>
      <bindings><binding protocol="ftp" bindingInformation="127.0.0.1:2121:" /></bindings>
      <ftpServer><security>
        <authentication><basicAuthentication enabled="true" /></authentication>
      </security></ftpServer>
    </site>
  </sites></system.applicationHost>
  <system.webServer />
</configuration>
"""


@pytest.fixture(autouse=True)
def other_command_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher imports every command group; stand in for any not importable here,
    so these tests exercise ``config`` alone."""
    for name in ("cert_cmd", "user_cmd"):
        try:
            importlib.import_module(f"ftps7.cli.{name}")
        except Exception:  # noqa: BLE001 - any failure means "not available here"
            stub = types.ModuleType(f"ftps7.cli.{name}")
            stub.register = lambda subparsers: None  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, f"ftps7.cli.{name}", stub)
            monkeypatch.setattr(ftps7.cli, name, stub, raising=False)


def write(tmp_path: Path, text: str) -> str:
    (tmp_path / "root").mkdir(exist_ok=True)
    path = tmp_path / "ftps7.config"
    path.write_text(text)
    return str(path)


def test_check_valid_file_prints_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, VALID)
    assert main(["config", "check", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"Configuration {path}: OK" in out
    assert 'Site "Checked Site" (id 3): started' in out
    assert "127.0.0.1:2121" in out
    assert "WARNINGS (2):" in out
    assert "system.webServer" in out and "requires SSL" in out


def test_check_uses_the_global_config_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, VALID)
    assert main(["--config", path, "config", "check"]) == 0
    assert "Checked Site" in capsys.readouterr().out


def test_check_invalid_file_lists_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID.replace('id="3"', 'id="zero"').replace(
        'physicalPath="root"', 'physicalPath="gone"'
    )
    path = write(tmp_path, text)
    assert main(["config", "check", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{path}:3: <configuration/system.applicationHost/sites/site")
    assert "attribute id: bad value 'zero'" in lines[0]
    assert "attribute physicalPath" in lines[1] and "does not exist" in lines[1]
    assert lines[-1] == f"ftps7: {path}: 2 errors; configuration refused"
    assert "Traceback" not in err


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "missing.config")
    assert main(["config", "check", path]) == 1
    _, err = capsys.readouterr()
    assert "cannot read the configuration file" in err
