from __future__ import annotations

from ftps7.core.messages import SUPPORTED_VARIABLES, expand, render, split_lines

VARIABLES = {
    "UserName": "alice",
    "SiteName": "Default FTP Site",
    "SessionID": "0f1e",
    "BytesSent": "100",
    "BytesReceived": "42",
}


def test_expand_all_documented_variables() -> None:
    text = "%UserName%@%SiteName% #%SessionID% out=%BytesSent% in=%BytesReceived%"
    assert expand(text, VARIABLES) == "alice@Default FTP Site #0f1e out=100 in=42"
    assert set(SUPPORTED_VARIABLES) == set(VARIABLES)


def test_variable_names_are_case_insensitive() -> None:
    assert expand("hi %username% / %USERNAME%", VARIABLES) == "hi alice / alice"


def test_unknown_variables_and_lone_percents_are_kept() -> None:
    assert expand("%Nope% 100% sure %% %UserName", VARIABLES) == "%Nope% 100% sure %% %UserName"
    assert expand("50%%UserName%", VARIABLES) == "50%alice"


def test_values_cannot_add_lines() -> None:
    assert expand("user %UserName%", {"UserName": "x\r\n230 fake"}) == "user x  230 fake"


def test_split_lines() -> None:
    assert split_lines("one\r\ntwo\nthree\rfour") == ["one", "two", "three", "four"]
    assert split_lines("") == []
    assert split_lines("single") == ["single"]
    assert split_lines("a\r\n") == ["a"]
    assert split_lines("a\n\nb") == ["a", "", "b"]


def test_backslash_n_is_not_a_line_break() -> None:
    assert split_lines("a\\nb") == ["a\\nb"]


def test_render() -> None:
    assert render("Hi %UserName%\r\nBye", VARIABLES, expand_variables=True) == ["Hi alice", "Bye"]
    assert render("Hi %UserName%", VARIABLES, expand_variables=False) == ["Hi %UserName%"]
