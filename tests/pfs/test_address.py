import pytest

from jupyterlab_pachls.pfs import (
    InvalidName,
    InvalidPath,
    ParseError,
    normalize_path,
    parse_address,
    parse_ref,
    parse_repo,
    validate_name,
)
from jupyterlab_pachls.pfs.address import parent_dir

COMMIT = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "text, fields",
    [
        ("images", dict(repo="images", project="default", ref=None, ancestors=0, path=None)),
        ("proj/images", dict(repo="images", project="proj")),
        ("images@master", dict(ref="master")),
        (f"images@{COMMIT}", dict(ref=COMMIT)),
        ("images@master^2", dict(ref="master", ancestors=2)),
        ("images@master^^^", dict(ref="master", ancestors=3)),
        ("images@master:/cats/001.png", dict(ref="master", path="/cats/001.png")),
        ("images@master:cats/", dict(path="/cats")),
        ("p-1/my_repo@dev-2^1:/a/b", dict(project="p-1", repo="my_repo", ref="dev-2", ancestors=1, path="/a/b")),
    ],
)
def test_parse(text, fields):
    address = parse_address(text)
    for name, value in fields.items():
        assert getattr(address, name) == value


@pytest.mark.parametrize(
    "text",
    ["images", "proj/images", "images@master", f"images@{COMMIT}", "images@master^2", "images@master:/cats/001.png"],
)
def test_print_round_trip(text):
    assert str(parse_address(text)) == text
    assert parse_address(str(parse_address(text))) == parse_address(text)


def test_commit_ids_are_told_from_branches():
    assert parse_address(f"images@{COMMIT}").is_commit
    assert not parse_address("images@master").is_commit
    assert not parse_address("images@" + COMMIT.upper()).is_commit  # upper case is a branch name


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("", 0, "empty"),
        ("im ages", 0, "only letters"),
        ("images@", 7, "branch name or commit"),
        ("images@mas ter", 7, "only letters"),
        ("images@master^x", 13, "after '^'"),
        ("images@master:/a/../b", 14, "'..'"),
        ("bad proj/images", 0, "project name"),
        ("proj/im*ages", 5, "repo name"),
        ("x" * 64, 0, "limit is 63"),
    ],
)
def test_parse_errors_say_what_and_where(text, position, words):
    with pytest.raises(ParseError) as info:
        parse_address(text)
    assert info.value.details["position"] == position
    assert words in info.value.message


def test_parse_requirements():
    with pytest.raises(ParseError, match="expected @branch"):
        parse_address("images", require_ref=True)
    with pytest.raises(ParseError, match="expected :/path"):
        parse_address("images@master", require_path=True)
    with pytest.raises(ParseError):
        parse_address(None)


def test_ref_and_repo_helpers():
    assert parse_ref("master^3") == ("master", 3)
    assert parse_ref(COMMIT) == (COMMIT, 0)
    assert str(parse_repo("p/r")) == "p/r"
    assert str(parse_repo("r")) == "r"
    for bad in ("a/b/c", "/etc", "proj/"):
        with pytest.raises(InvalidName):
            parse_repo(bad)
    with pytest.raises(InvalidName):
        parse_repo(3)


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 63])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "../x", "x" * 64, "é", "a.b", None, 5])
def test_invalid_names(name):
    with pytest.raises(InvalidName):
        validate_name(name)


@pytest.mark.parametrize(
    "raw, normal",
    [("/", "/"), ("", "/"), ("a", "/a"), ("/a/b/", "/a/b"), ("a/b c/é.png", "/a/b c/é.png")],
)
def test_normalize_path(raw, normal):
    assert normalize_path(raw) == normal


@pytest.mark.parametrize(
    "raw",
    ["..", "/..", "/a/../b", "a/./b", "a//b", "//a", "a/\0b", "a\nb", "/" + "x" * 256, "a/" * 2100, None, b"/a"],
)
def test_paths_that_would_escape_or_confuse_are_refused(raw):
    with pytest.raises(InvalidPath):
        normalize_path(raw)


def test_root_can_be_refused():
    with pytest.raises(InvalidPath):
        normalize_path("/", allow_root=False)


def test_parent_dir():
    assert parent_dir("/a") == "/"
    assert parent_dir("/a/b") == "/a/"
    assert parent_dir("/a/b/") == "/a/"
    assert parent_dir("/a/") == "/"
