"""The local accounts file: format, lookups, reloads and atomic rewrites."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import argon2
import pytest

from ftps7.auth import accounts as accounts_module
from ftps7.auth.accounts import (
    Account,
    AccountsFile,
    AccountsFileError,
    DuplicateAccountError,
    InvalidAccountNameError,
    InvalidPasswordError,
    UnknownAccountError,
    check_name,
    parse_accounts,
)


def fast_hasher(time_cost: int = 1) -> argon2.PasswordHasher:
    """Tiny argon2id parameters: the format is the same, the cost is not."""
    return argon2.PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "users")


@pytest.fixture
def accounts(path):
    return AccountsFile(path, hasher=fast_hasher())


def test_round_trip(path, accounts):
    accounts.add("alice", "s3cret", ["Editors", "staff"])
    accounts.add("bob", "hunter2")
    fresh = AccountsFile(path, hasher=fast_hasher())
    alice = fresh.lookup("alice")
    assert alice is not None
    assert alice.name == "alice"
    assert alice.groups == ("Editors", "staff")
    assert alice.password_hash.startswith("$argon2id$")
    assert fresh.verify(alice.password_hash, b"s3cret")
    assert not fresh.verify(alice.password_hash, b"S3cret")
    assert [account.name for account in fresh.list()] == ["alice", "bob"]
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("alice:$argon2id$") and lines[0].endswith(":Editors,staff")
    assert lines[1].startswith("bob:$argon2id$") and lines[1].endswith(":")


def test_new_file_is_private(path, accounts):
    accounts.add("alice", "pw")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_rewrite_keeps_mode_comments_and_order(path, accounts):
    hash_ = fast_hasher().hash("pw")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(f"# our users\n\ncarol:{hash_}:ops\n# end\n")
    os.chmod(path, 0o640)
    accounts.add("dave", "pw")
    accounts.delete("carol")
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("# our users\n\n# end\ndave:")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_lookup_is_case_insensitive(accounts):
    accounts.add("Alice", "pw")
    for spelling in ("alice", "ALICE", "aLiCe"):
        account = accounts.lookup(spelling)
        assert account is not None and account.name == "Alice"
    with pytest.raises(DuplicateAccountError):
        accounts.add("ALICE", "other")
    accounts.set_password("ALICE", "new")
    assert accounts.verify(accounts.lookup("alice").password_hash, "new")
    accounts.delete("alice")
    assert accounts.lookup("Alice") is None


def test_unicode_names_compare_after_normalisation(accounts):
    accounts.add("Ren\u00e9", "pw")  # precomposed é
    assert accounts.lookup("RENE\u0301") is not None  # E + combining acute


def test_missing_file_has_no_accounts(accounts):
    assert accounts.lookup("alice") is None
    assert accounts.list() == []


def test_reload_when_another_writer_changes_the_file(path, accounts):
    accounts.add("alice", "pw")
    assert accounts.lookup("bob") is None
    other = AccountsFile(path, hasher=fast_hasher())
    other.add("bob", "pw")
    assert accounts.lookup("bob") is not None
    other.delete("alice")
    assert accounts.lookup("alice") is None


def test_reload_after_hand_edit(path, accounts):
    accounts.add("alice", "pw")
    assert accounts.lookup("alice") is not None
    hash_ = fast_hasher().hash("pw")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(f"erin:{hash_}:a\n")
    account = accounts.lookup("erin")
    assert account is not None and account.groups == ("a",)


def test_broken_file_fails_closed_until_fixed(path, accounts):
    accounts.add("alice", "pw")
    assert accounts.lookup("alice") is not None
    good = Path(path).read_text(encoding="utf-8")
    with open(path, "a", encoding="utf-8") as stream:
        stream.write("this line is wrong\n")
    with pytest.raises(AccountsFileError, match=r"users:2:"):
        accounts.lookup("alice")
    with pytest.raises(AccountsFileError):
        accounts.lookup("alice")  # still broken: nothing stale is served
    with pytest.raises(AccountsFileError):
        accounts.add("bob", "pw")  # and nothing is written over it
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(good)
    assert accounts.lookup("alice") is not None


def test_failed_write_leaves_the_old_file(path, accounts, monkeypatch):
    accounts.add("alice", "pw")
    before = Path(path).read_bytes()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(accounts_module.os, "replace", failing_replace)
    with pytest.raises(AccountsFileError):
        accounts.add("bob", "pw")
    with pytest.raises(AccountsFileError):
        accounts.set_password("alice", "new")
    monkeypatch.undo()
    assert Path(path).read_bytes() == before
    leftovers = [name for name in os.listdir(os.path.dirname(path)) if name.endswith(".tmp")]
    assert leftovers == []
    fresh = AccountsFile(path, hasher=fast_hasher())
    assert fresh.lookup("bob") is None
    assert fresh.verify(fresh.lookup("alice").password_hash, "pw")


def test_failed_fsync_leaves_the_old_file(path, accounts, monkeypatch):
    accounts.add("alice", "pw")
    before = Path(path).read_bytes()

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(accounts_module.os, "fsync", failing_fsync)
    with pytest.raises(AccountsFileError):
        accounts.delete("alice")
    monkeypatch.undo()
    assert Path(path).read_bytes() == before


def test_set_password_and_groups(accounts):
    accounts.add("alice", "old", ["a"])
    old_hash = accounts.lookup("alice").password_hash
    accounts.set_password("alice", "new")
    account = accounts.lookup("alice")
    assert account.password_hash != old_hash
    assert account.groups == ("a",)
    assert accounts.verify(account.password_hash, "new")
    assert not accounts.verify(account.password_hash, "old")
    accounts.set_groups("alice", ["x", "X", "y"])
    assert accounts.lookup("alice").groups == ("x", "y")
    assert accounts.groups_for("ALICE") == frozenset({"x", "y"})


def test_unknown_accounts(accounts):
    with pytest.raises(UnknownAccountError):
        accounts.set_password("nobody", "pw")
    with pytest.raises(UnknownAccountError):
        accounts.delete("nobody")


@pytest.mark.parametrize(
    "name",
    ["", "a:b", "a,b", "a b", "a\tb", "a\x00b", "a\x7fb", "a/b", "a\\b", "a|b", "#a", ".", "..",
     "a\u200bb", "x" * 257],
)
def test_invalid_names_are_refused(accounts, name):
    with pytest.raises(InvalidAccountNameError):
        check_name(name)
    with pytest.raises(InvalidAccountNameError):
        accounts.add(name, "pw")


def test_valid_unusual_names(accounts):
    for name in ("j.doe", "o'brien", "user@example.com", "Ærø", "名前", "a#b"):
        accounts.add(name, "pw")
        assert accounts.lookup(name).name == name


def test_invalid_groups_and_passwords_are_refused(accounts):
    with pytest.raises(InvalidAccountNameError):
        accounts.add("alice", "pw", ["bad group"])
    with pytest.raises(InvalidPasswordError):
        accounts.add("alice", "")
    assert accounts.lookup("alice") is None


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("alice\n", 1),
        ("# ok\nalice:$2b$10$abcdefghijklmnopqrstuv:\n", 2),
        ("alice:$argon2id$garbage:\n", 1),
        ("alice:{h}:\nALICE:{h}:\n", 2),
        ("alice:{h}:a b\n", 1),
        ("a:b:{h}:c\n", 1),
    ],
)
def test_parse_errors_name_the_line(content, line):
    hash_ = fast_hasher().hash("pw")
    with pytest.raises(AccountsFileError, match=rf"^f:{line}: "):
        parse_accounts(content.format(h=hash_).encode(), "f")


def test_parse_accepts_bom_crlf_and_two_fields():
    hash_ = fast_hasher().hash("pw")
    data = f"\ufeff# c\r\nalice:{hash_}\r\n  \r\nbob:{hash_}: a , b \r\n".encode()
    document = parse_accounts(data, "f")
    index = document.index()
    assert index["alice"] == Account("alice", hash_, ())
    assert index["bob"].groups == ("a", "b")


def test_not_utf8_is_an_error():
    with pytest.raises(AccountsFileError, match=r"^f:2: not valid UTF-8"):
        parse_accounts(b"# fine\n\xff\xfe:x:\n", "f")


def test_repr_never_shows_the_hash(accounts):
    account = accounts.add("alice", "pw")
    assert "argon2" not in repr(account)


def test_unknown_name_still_costs_a_verification(accounts, monkeypatch):
    calls = []
    original = AccountsFile.verify

    def spy(self, password_hash, password):
        calls.append(password_hash)
        return original(self, password_hash, password)

    monkeypatch.setattr(AccountsFile, "verify", spy)
    assert accounts.verify_unknown(b"guess") is False
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_upgrade_hash_is_compare_and_swap(path):
    old = AccountsFile(path, hasher=fast_hasher(time_cost=1))
    old.add("alice", "pw")
    old_hash = old.lookup("alice").password_hash
    current = AccountsFile(path, hasher=fast_hasher(time_cost=2))
    assert current.needs_rehash(old_hash)
    assert current.upgrade_hash("alice", old_hash, "pw")
    new_hash = current.lookup("alice").password_hash
    assert new_hash != old_hash and "t=2" in new_hash
    assert not current.needs_rehash(new_hash)
    assert current.verify(new_hash, "pw")
    # A stale old hash (the password changed meanwhile) changes nothing.
    assert not current.upgrade_hash("alice", old_hash, "pw")
    assert current.lookup("alice").password_hash == new_hash
    assert not current.upgrade_hash("nobody", old_hash, "pw")


def test_concurrent_writers_lose_nothing(path):
    errors: list[BaseException] = []

    def add(index: int) -> None:
        try:
            AccountsFile(path, hasher=fast_hasher()).add(f"user{index}", "pw")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = {account.name for account in AccountsFile(path, hasher=fast_hasher()).list()}
    assert names == {f"user{index}" for index in range(8)}


def test_default_hasher_is_argon2id_rfc9106_low_memory():
    hasher = accounts_module.make_hasher()
    assert hasher.type is argon2.Type.ID
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (3, 65536, 4)
