from __future__ import annotations

import pytest

from ftps7.config.model import (
    AccessType,
    AuthorizationRule,
    AuthorizationSection,
    FileExtensionRule,
    LocationKey,
    Permission,
    RequestFiltering,
)
from ftps7.core import authz as authz_module
from ftps7.core.authz import (
    Authorizer,
    FilterReason,
    PathRole,
    permission_checks,
    request_filter_allows,
    required_permission,
)

R = Permission.READ
W = Permission.WRITE
RW = R | W
NONE = Permission.NONE
SITE = "Default FTP Site"


def allow(users: str = "", roles: str = "", perms: Permission = R) -> AuthorizationRule:
    return _rule(AccessType.ALLOW, users, roles, perms)


def deny(users: str = "", roles: str = "", perms: Permission = R) -> AuthorizationRule:
    return _rule(AccessType.DENY, users, roles, perms)


def _rule(access: AccessType, users: str, roles: str, perms: Permission) -> AuthorizationRule:
    def split(text: str) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in text.split(",") if part.strip())

    return AuthorizationRule(access, split(users), split(roles), perms)


def section(*rules: AuthorizationRule, clear: bool = False) -> AuthorizationSection:
    return AuthorizationSection(clear=clear, rules=rules)


def at(path: str, site: str | None = "default ftp site") -> LocationKey:
    return LocationKey(site, path)


def test_no_rules_means_no_access() -> None:
    authz = Authorizer([])
    assert authz.permissions(SITE, "/", "alice", frozenset(), False) is NONE
    assert not authz.can_log_on(SITE, "alice", frozenset(), False)


def test_everyone_rule_server_wide() -> None:
    authz = Authorizer([(at("/", None), section(allow("*", perms=R)))])
    assert authz.permissions(SITE, "/any/where", "bob", frozenset(), False) is R
    assert authz.permissions("Other Site", "/", "bob", frozenset(), True) is R


def test_deny_wins_over_allow() -> None:
    authz = Authorizer([(at("/"), section(allow("*", perms=RW), deny("bob", perms=W)))])
    assert authz.permissions(SITE, "/f", "bob", frozenset(), False) is R
    assert authz.permissions(SITE, "/f", "alice", frozenset(), False) == RW


def test_child_location_adds_to_parent_rules() -> None:
    authz = Authorizer(
        [
            (at("/"), section(allow("*", perms=R))),
            (at("/upload"), section(allow("alice", perms=W))),
        ]
    )
    assert authz.permissions(SITE, "/upload/new.txt", "alice", frozenset(), False) == RW
    assert authz.permissions(SITE, "/upload", "alice", frozenset(), False) == RW
    assert authz.permissions(SITE, "/other", "alice", frozenset(), False) is R
    assert authz.permissions(SITE, "/upload/x", "bob", frozenset(), False) is R


def test_deny_inherited_from_parent_still_applies() -> None:
    authz = Authorizer(
        [
            (at("/"), section(deny("bob", perms=W), allow("*", perms=R))),
            (at("/upload"), section(allow("*", perms=W))),
        ]
    )
    assert authz.permissions(SITE, "/upload/x", "bob", frozenset(), False) is R


def test_clear_drops_inherited_rules() -> None:
    authz = Authorizer(
        [
            (at("/", None), section(allow("*", perms=RW))),
            (at("/private"), section(allow("admin", perms=R), clear=True)),
        ]
    )
    assert authz.permissions(SITE, "/private/x", "alice", frozenset(), False) is NONE
    assert authz.permissions(SITE, "/private/x", "admin", frozenset(), False) is R
    assert authz.permissions(SITE, "/public", "alice", frozenset(), False) == RW


def test_locations_are_segment_wise_and_case_insensitive() -> None:
    authz = Authorizer([(at("/Up"), section(allow("*", perms=RW)))])
    assert authz.permissions("DEFAULT FTP SITE", "/up/File", "x", frozenset(), False) == RW
    assert authz.permissions(SITE, "/UP", "x", frozenset(), False) == RW
    assert authz.permissions(SITE, "/upload", "x", frozenset(), False) is NONE


def test_other_sites_rules_do_not_apply() -> None:
    authz = Authorizer([(at("/", "other site"), section(allow("*", perms=RW)))])
    assert authz.permissions(SITE, "/", "x", frozenset(), False) is NONE
    assert authz.permissions("Other Site", "/", "x", frozenset(), False) == RW


def test_question_mark_matches_anonymous_only() -> None:
    authz = Authorizer([(at("/"), section(allow("?", perms=R)))])
    assert authz.permissions(SITE, "/", "IUSR", frozenset(), True) is R
    assert authz.permissions(SITE, "/", "alice", frozenset(), False) is NONE


def test_anonymous_account_matches_by_name() -> None:
    authz = Authorizer([(at("/"), section(allow("IUSR", perms=R)))])
    assert authz.permissions(SITE, "/", "iusr", frozenset(), True) is R


def test_user_names_are_case_insensitive() -> None:
    authz = Authorizer([(at("/"), section(allow("Alice, EXAMPLE\\Bob", perms=R)))])
    assert authz.permissions(SITE, "/", "ALICE", frozenset(), False) is R
    assert authz.permissions(SITE, "/", "example\\bob", frozenset(), False) is R
    assert authz.permissions(SITE, "/", "bob", frozenset(), False) is NONE


def test_roles_match_groups() -> None:
    authz = Authorizer(
        [(at("/"), section(allow(roles="Editors", perms=RW), deny(roles="interns", perms=W)))]
    )
    assert authz.permissions(SITE, "/", "x", frozenset({"EDITORS"}), False) == RW
    assert authz.permissions(SITE, "/", "x", frozenset({"editors", "Interns"}), False) is R
    assert authz.permissions(SITE, "/", "x", frozenset({"others"}), False) is NONE


def test_effective_rules_order() -> None:
    server = allow("*", perms=R)
    root = allow("a", perms=W)
    deep = deny("b", perms=R)
    authz = Authorizer(
        [(at("/pub/x"), section(deep)), (at("/", None), section(server)), (at("/"), section(root))]
    )
    assert authz.effective_rules(SITE, "/pub/x/y") == (server, root, deep)
    assert authz.effective_rules(SITE, "/pub") == (server, root)


def test_can_log_on_through_a_location_only() -> None:
    authz = Authorizer(
        [
            (at("/"), section(deny("*", perms=RW))),
            (at("/upload"), section(allow("alice", perms=W), clear=True)),
        ]
    )
    assert authz.can_log_on(SITE, "alice", frozenset(), False)
    assert not authz.can_log_on(SITE, "bob", frozenset(), False)
    assert not authz.can_log_on("Other Site", "alice", frozenset(), False)


def test_can_log_on_anonymous_and_roles() -> None:
    authz = Authorizer([(at("/"), section(allow("?", perms=R), allow(roles="staff", perms=R)))])
    assert authz.can_log_on(SITE, "IUSR", frozenset(), True)
    assert authz.can_log_on(SITE, "carol", frozenset({"Staff"}), False)
    assert not authz.can_log_on(SITE, "carol", frozenset(), False)


def test_can_log_on_answers_are_kept_per_user_groups_and_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(authz_module, "LOGON_CACHE_SIZE", 2)  # and forgotten when full
    authz = Authorizer([(at("/"), section(allow("?", perms=R), allow(roles="staff", perms=R)))])
    for _ in range(3):
        assert authz.can_log_on(SITE, "carol", frozenset({"Staff"}), False)
        assert not authz.can_log_on(SITE, "carol", frozenset(), False)
        assert authz.can_log_on(SITE, "IUSR", frozenset(), True)
        assert not authz.can_log_on(SITE, "IUSR", frozenset(), False)
        assert not authz.can_log_on("Other Site", "carol", frozenset(), True)


@pytest.mark.parametrize(
    ("command", "needed"),
    [
        ("RETR", R), ("LIST", R), ("NLST", R), ("MLSD", R), ("MLST", R), ("SIZE", R),
        ("MDTM", R), ("CWD", R), ("cdup", R), ("STOR", W), ("APPE", W), ("STOU", W),
        ("DELE", W), ("MKD", W), ("RMD", W), ("RNFR", W), ("RNTO", W), ("xmkd", W),
        ("NOOP", NONE), ("PWD", NONE), ("USER", NONE), ("TYPE", NONE),
    ],
)  # fmt: skip
def test_required_permission(command: str, needed: Permission) -> None:
    assert required_permission(command) is needed


def test_rnto_needs_write_on_both_names() -> None:
    assert permission_checks("RNTO") == ((PathRole.RENAME_SOURCE, W), (PathRole.TARGET, W))
    assert permission_checks("RETR") == ((PathRole.TARGET, R),)
    assert permission_checks("NOOP") == ()


# ---------------------------------------------------------------- request filtering


def test_request_filtering_defaults_allow() -> None:
    assert request_filter_allows("/pub/file.exe", RequestFiltering()) is None


def test_hidden_segments() -> None:
    rf = RequestFiltering(hidden_segments=("_vti_cnf", "Secret"))
    assert request_filter_allows("/a/SECRET/b.txt", rf) is FilterReason.HIDDEN_SEGMENT
    assert request_filter_allows("/a/_VTI_CNF", rf) is FilterReason.HIDDEN_SEGMENT
    assert request_filter_allows("/a/secrets/b.txt", rf) is None


def test_deny_url_sequences() -> None:
    rf = RequestFiltering(deny_url_sequences=("..", "~Tmp"))
    assert request_filter_allows("/a/b..c", rf) is FilterReason.DENIED_SEQUENCE
    assert request_filter_allows("/a/~tmp1/x", rf) is FilterReason.DENIED_SEQUENCE
    assert request_filter_allows("/a/b.c", rf) is None


def test_file_extensions() -> None:
    rf = RequestFiltering(
        file_extensions=(FileExtensionRule(".exe", False), FileExtensionRule(".htaccess", False))
    )
    assert request_filter_allows("/x/setup.EXE", rf) is FilterReason.EXTENSION_DENIED
    assert request_filter_allows("/x/.htaccess", rf) is FilterReason.EXTENSION_DENIED
    assert request_filter_allows("/x/notes.txt", rf) is None
    assert request_filter_allows("/x.exe/notes.txt", rf) is None


def test_file_extensions_allow_unlisted_false() -> None:
    rf = RequestFiltering(
        file_extensions_allow_unlisted=False, file_extensions=(FileExtensionRule(".txt", True),)
    )
    assert request_filter_allows("/a/b.txt", rf) is None
    assert request_filter_allows("/a/b.pdf", rf) is FilterReason.EXTENSION_DENIED
    assert request_filter_allows("/a/noext", rf) is FilterReason.EXTENSION_DENIED
    assert request_filter_allows("/a/folder", rf, check_extension=False) is None
    assert request_filter_allows("/", rf) is None


def test_max_url_counts_utf8_bytes() -> None:
    rf = RequestFiltering(max_url=8)
    assert request_filter_allows("/1234567", rf) is None
    assert request_filter_allows("/12345678", rf) is FilterReason.URL_TOO_LONG
    assert request_filter_allows("/ééé", rf) is None  # 7 bytes
    assert request_filter_allows("/éééé", rf) is FilterReason.URL_TOO_LONG  # 9 bytes


def test_filter_reason_is_a_short_string() -> None:
    assert str(FilterReason.HIDDEN_SEGMENT) == "hidden segment"
