"""``ftps7 user add|passwd|del|list`` against a real configuration file."""

from __future__ import annotations

import argparse
import importlib
import io
import sys

import argon2
import pytest

from ftps7.auth import accounts as accounts_module
from ftps7.auth.accounts import AccountsFile
from ftps7.cli import CommandError, user_cmd

CONFIG = """\
<configuration>
  <system.applicationHost>
    <sites>
      <site name="Test Site" id="1">
        <application path="/">
          <virtualDirectory path="/" physicalPath="root" />
        </application>
        <bindings>
          <binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />
        </bindings>
      </site>
    </sites>
  </system.applicationHost>
  <ftps7>
    <certificateStore path="certs" />
    <localAccounts {accounts} />
  </ftps7>
</configuration>
"""

def write_config(tmp_path, accounts='path="users"'):
    (tmp_path / "root").mkdir(exist_ok=True)
    (tmp_path / "certs").mkdir(exist_ok=True)
    config = tmp_path / "ftps7.config"
    config.write_text(CONFIG.format(accounts=accounts), encoding="utf-8")
    return str(config)


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setattr(
        accounts_module,
        "make_hasher",
        lambda: argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    return write_config(tmp_path)


@pytest.fixture
def users(tmp_path):
    return AccountsFile(str(tmp_path / "users"))


def run(argv, stdin=""):
    """Run ``ftps7 ARGV`` as the console script would; returns its exit status."""
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        try:
            for module in ("cert_cmd", "config_cmd"):
                importlib.import_module(f"ftps7.cli.{module}")
        except ImportError:  # other command groups not written yet: user alone
            parser = argparse.ArgumentParser(prog="ftps7")
            parser.add_argument("--config")
            user_cmd.register(parser.add_subparsers(dest="group", required=True))
            args = parser.parse_args(argv)
            try:
                return args.handler(args)
            except CommandError as error:
                print(f"ftps7: {error}", file=sys.stderr)
                return error.status
        from ftps7.cli import main

        return main(argv)
    finally:
        sys.stdin = saved


def test_add_list_passwd_del(config, users, capsys):
    assert run(["--config", config, "user", "add", "alice", "--groups", "Editors, staff",
                "--password-stdin"], "s3cret\n") == 0
    assert run(["--config", config, "user", "add", "Bob", "--password-stdin"], "pw\r\n") == 0
    alice = users.lookup("ALICE")
    assert alice.groups == ("Editors", "staff")
    assert users.verify(alice.password_hash, "s3cret")
    assert users.verify(users.lookup("bob").password_hash, "pw")
    capsys.readouterr()

    assert run(["--config", config, "user", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["alice\tEditors,staff", "Bob\t"]
    assert "argon2" not in out

    assert run(["--config", config, "user", "passwd", "ALICE", "--password-stdin"], "n3w\n") == 0
    alice = users.lookup("alice")
    assert users.verify(alice.password_hash, "n3w")
    assert not users.verify(alice.password_hash, "s3cret")

    assert run(["--config", config, "user", "del", "bob"]) == 0
    assert users.lookup("bob") is None
    assert [account.name for account in users.list()] == ["alice"]


def test_errors_exit_1_and_change_nothing(config, users, capsys, tmp_path):
    assert run(["--config", config, "user", "add", "alice", "--password-stdin"], "pw\n") == 0
    before = (tmp_path / "users").read_bytes()
    capsys.readouterr()
    cases = [
        (["user", "add", "ALICE", "--password-stdin"], "pw\n", "already exists"),
        (["user", "add", "a:b", "--password-stdin"], "pw\n", "may not contain"),
        (["user", "add", "carol", "--groups", "a b", "--password-stdin"], "pw\n", "group"),
        (["user", "add", "carol", "--password-stdin"], "", "no password"),
        (["user", "add", "carol", "--password-stdin"], "\n", "empty"),
        (["user", "passwd", "nobody", "--password-stdin"], "pw\n", "no account"),
        (["user", "del", "nobody"], "", "no account"),
    ]
    for argv, stdin, message in cases:
        assert run(["--config", config, *argv], stdin) == 1, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert (tmp_path / "users").read_bytes() == before


def test_prompted_password(config, users, monkeypatch, capsys):
    answers = iter(["typed", "typed", "one", "two"])
    monkeypatch.setattr(user_cmd.getpass, "getpass", lambda prompt="": next(answers))
    assert run(["--config", config, "user", "add", "alice"]) == 0
    assert users.verify(users.lookup("alice").password_hash, "typed")
    assert run(["--config", config, "user", "passwd", "alice"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert users.verify(users.lookup("alice").password_hash, "typed")


def test_password_is_not_an_argument(config):
    with pytest.raises(SystemExit):
        run(["--config", config, "user", "add", "alice", "--password", "x"])


def test_accounts_path_comes_from_the_configuration(tmp_path):
    config = write_config(tmp_path)
    assert user_cmd.accounts_path_for(config) == str(tmp_path / "users")


def test_pam_configuration_is_refused(tmp_path):
    config = write_config(tmp_path, accounts='source="pam" service="ftps7"')
    with pytest.raises(CommandError, match="PAM"):
        user_cmd.accounts_path_for(config)


def test_unloadable_configuration_is_a_command_error(tmp_path):
    with pytest.raises(CommandError):
        user_cmd.accounts_path_for(str(tmp_path / "missing.config"))


def test_existing_name_is_refused_before_the_prompt(config, monkeypatch, capsys):
    assert run(["--config", config, "user", "add", "alice", "--password-stdin"], "pw\n") == 0

    def no_prompt(prompt=""):
        raise AssertionError("prompted for a password that would go nowhere")

    monkeypatch.setattr(user_cmd.getpass, "getpass", no_prompt)
    assert run(["--config", config, "user", "add", "ALICE"]) == 1
    assert run(["--config", config, "user", "passwd", "bob"]) == 1
    assert "already exists" in capsys.readouterr().err
