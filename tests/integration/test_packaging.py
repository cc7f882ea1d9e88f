"""The installed package: console script, twistd dropin, and no stray package files.

CI installs the project non-editably (``pip install '.[test]'``), so these
check what a real ``pip install .`` produced.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import twisted.plugins

BIN = Path(sys.executable).parent


def test_twistd_knows_the_plugin() -> None:
    result = subprocess.run(
        [str(BIN / "twistd"), "ftps7", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--auth" in result.stdout


def test_console_script() -> None:
    result = subprocess.run(
        [str(BIN / "ftps7"), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("config", "cert", "user"):
        assert command in result.stdout


def test_dropin_is_not_a_package() -> None:
    folders = [Path(p) for p in twisted.plugins.__path__]
    ours = [folder for folder in folders if (folder / "ftps7_plugin.py").exists()]
    assert ours, folders
    for folder in ours:
        # An __init__.py next to our dropin would shadow Twisted's own plugins.
        assert not (folder / "__init__.py").exists() or folder.parent.name == "twisted"


def test_a_bad_configuration_stops_twistd_with_every_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.config"
    config.write_text(
        "<configuration><system.applicationHost><sites>"
        '<site name="A" id="1"><application path="/">'
        f'<virtualDirectory path="/" physicalPath="{tmp_path}/missing" /></application>'
        '<bindings><binding protocol="ftp" bindingInformation="127.0.0.1:99999:" /></bindings>'
        '<ftpServer><security><ssl controlChannelPolicy="SslRequired" /></security></ftpServer>'
        "</site></sites></system.applicationHost></configuration>"
    )
    result = subprocess.run(
        [str(BIN / "twistd"), "-n", "--pidfile=", "ftps7", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert f"{config}:1:" in output
    assert "controlChannelPolicy" in output and "SslRequireCredentialsOnly" in output
    assert "99999" in output
    assert "missing" in output
