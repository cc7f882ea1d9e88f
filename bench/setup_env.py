"""What the bench installs and creates on the machine, and how it removes it.

- vsftpd from the Debian archive (``apt-get install -y vsftpd``) when it is
  missing. The bench never starts or stops the packaged service; it runs its
  own ``vsftpd <conf>`` child. (On a systemd host the package's own service
  starts on port 21 at install time; the bench does not touch it.)
- A bench venv (default ``bench/.venv``) with pyftpdlib and pyOpenSSL for the
  pyftpdlib server and the clients, and py-spy when profiling.
- The session-rate client ``sessload`` (``bench/sessload.c``), compiled into
  the bench venv's ``bin/`` with ``cc`` against GnuTLS; ``gcc`` and
  ``libgnutls28-dev`` from the Debian archive when they are missing.
- A temporary local Linux user for vsftpd's PAM logon (the other servers use
  the same name and password in their own account stores). It is marked in
  its GECOS field so that the bench only ever deletes a user it created.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from servers import BenchError

USER_MARK = "ftps7 bench (temporary)"


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def _apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
    _run(
        ["apt-get", "install", "-y", "-qq", *packages],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_vsftpd(install: bool) -> str:
    """The vsftpd binary's path; installs the Debian package if it is missing."""
    binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    if not Path(binary).exists():
        if not install:
            raise BenchError("vsftpd is not installed (run without --no-install)")
        print("bench: apt-get install -y vsftpd", file=sys.stderr)
        _apt_install("vsftpd")
    if not Path(binary).exists():
        raise BenchError("vsftpd is still missing after apt-get install")
    return binary


SESSLOAD_SOURCE = Path(__file__).with_name("sessload.c")


def ensure_sessload(venv: Path, install: bool) -> Path:
    """``sessload`` in the bench venv, (re)built when its source is newer."""
    binary = venv / "bin" / "sessload"
    if binary.exists() and binary.stat().st_mtime >= SESSLOAD_SOURCE.stat().st_mtime:
        return binary
    headers = Path("/usr/include/gnutls/gnutls.h")
    if shutil.which("cc") is None or not headers.exists():
        if not install:
            raise BenchError(
                "building sessload needs cc and libgnutls28-dev (or drop --no-install)"
            )
        print("bench: apt-get install -y gcc libgnutls28-dev", file=sys.stderr)
        _apt_install("gcc", "libgnutls28-dev")
    built = binary.with_name("sessload.new")
    _run(["cc", "-O2", "-o", str(built), str(SESSLOAD_SOURCE), "-lgnutls"])
    built.replace(binary)
    return binary


def package_version(name: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def vsftpd_has_option(binary: str, option: str) -> bool:
    """Whether the vsftpd binary knows a configuration option (it has the name as a string)."""
    return option.encode() in Path(binary).read_bytes()


def ensure_bench_venv(venv: Path, install: bool, profile: bool) -> Path:
    """The bench venv's Python, with pyftpdlib, pyOpenSSL (and py-spy) installed."""
    python = venv / "bin" / "python"
    if not python.exists():
        if not install:
            raise BenchError(f"no bench venv at {venv} (run without --no-install)")
        try:
            _run([sys.executable, "-m", "venv", str(venv)], capture_output=True)
        except subprocess.CalledProcessError:
            _apt_install("python3-venv")
            _run([sys.executable, "-m", "venv", str(venv)])
    wanted = ["pyftpdlib", "pyOpenSSL"] + (["py-spy"] if profile else [])
    present = subprocess.run(
        [str(python), "-c", "import pyftpdlib, OpenSSL"], capture_output=True
    ).returncode == 0 and (not profile or (venv / "bin" / "py-spy").exists())
    if not present:
        if not install:
            raise BenchError(f"the bench venv lacks {', '.join(wanted)}")
        print(f"bench: pip install {' '.join(wanted)} into {venv}", file=sys.stderr)
        _run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        _run([str(python), "-m", "pip", "install", "-q", *wanted])
    return python


def python_package_version(python: Path, module: str, attribute: str = "__version__") -> str:
    result = subprocess.run(
        [
            str(python),
            "-c",
            f"import {module}; print(getattr({module}, {attribute!r}, '?'))",
        ],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or "unknown"


def create_user(name: str, home: Path, password: str) -> None:
    """A local user for vsftpd's PAM logon, with ``password`` set via chpasswd."""
    try:
        existing = pwd.getpwnam(name)
    except KeyError:
        existing = None
    if existing is not None:
        if existing.pw_gecos != USER_MARK:
            raise BenchError(
                f"a user {name!r} exists and was not made by the bench; not touching it"
            )
        delete_user(name)  # left over from an interrupted run
    _run(
        ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/bash",
         "--comment", USER_MARK, name],
        capture_output=True,
    )  # fmt: skip
    _run(["chpasswd"], input=f"{name}:{password}\n", capture_output=True)


def delete_user(name: str) -> None:
    """Delete the bench's user (only if it carries the bench's mark)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if entry.pw_gecos == USER_MARK:
        subprocess.run(["userdel", name], capture_output=True)
