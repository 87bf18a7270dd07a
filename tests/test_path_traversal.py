"""Path traversal through the REST API: every route that takes a path, a cursor, a glob or an address.

Hostile paths (``..``, absolute host paths, percent- and double-encoded variants, backslashes, NUL,
very long names, odd unicode) are sent to a real Jupyter server. Each answer is a documented typed
error (400 ``invalid_path`` / ``parse_error`` / ``invalid_argument``), or, for a name that is only
odd and stays inside the repo, 404 ``not_found``; never a 5xx, never a byte of a file outside the
store. A canary directory beside the store proves nothing outside was read or written.
"""

from __future__ import annotations

import json
import hashlib
import os
import socket
import unicodedata
import urllib.parse
from pathlib import Path

import pytest

from jupyterlab_pachls.pfs import InvalidPath, normalize_path
from jupyterlab_pachls.pfs.address import MAX_PATH, MAX_SEGMENT
from openapi_check import api, openapi, raw_api  # noqa: F401

CANARY_BYTES = b"canary: this must never leave its directory\n"
PASSWD_MARK = b"root:x:0:0"

#: (raw path text, what it is) — refused by ``normalize_path`` (400) wherever a path is taken.
REFUSED = [
    ("..", "parent"),
    ("/..", "parent of the root"),
    ("../../../../../../etc/passwd", "relative escape"),
    ("/cats/../../../../etc/passwd", "escape through a real directory"),
    ("/cats/..", "trailing parent"),
    ("/cats/./001.png", "dot segment"),
    ("//etc/passwd", "empty segment"),
    ("/cats//001.png", "empty segment inside"),
    ("/cats/001.png\x00.json", "NUL"),
    ("\x00", "NUL alone"),
    ("/cats/\n001.png", "newline"),
    ("/cats/\x7f", "DEL"),
    ("/cats/\x85next", "C1 control"),
    ("/" + "a" * (MAX_PATH + 1), "path too long"),
    ("/" + "b" * (MAX_SEGMENT + 1), "segment too long"),
    ("/" + "é" * (MAX_SEGMENT // 2 + 1), "segment too long in bytes"),
    ("/cats/\u202egnp.exe", "right-to-left override"),
    ("/cats/\u2066x\u2069", "bidi isolate"),
    ("/cats/\ud800", "lone surrogate"),
    ("/" + "\ud800" * 200, "long run of lone surrogates"),
]

#: Odd but harmless: ordinary names inside the repo (404 when absent), never a way out.
INSIDE = [
    "/etc/passwd",  # repo-absolute: the repo's own /etc/passwd, not the host's
    "%2e%2e/%2e%2e/etc/passwd",  # double-encoded: after one decoding these are literal names
    "..%2f..%2fetc%2fpasswd",
    "..\\..\\etc\\passwd",  # backslashes are name characters on POSIX, never separators
    "/cats/\uff0e\uff0e\uff0fetc",  # fullwidth full stops and solidus
    "/cats/\u2024\u2024/passwd",  # one-dot leaders
    "/cats/...",  # three dots is a name
    "/caf\u00e9",  # NFC
    "/cafe\u0301",  # NFD
]


@pytest.fixture
def pachls_config() -> dict:
    """A team Label Studio that does not answer: labeling routes must never start one here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"PachlsConfig": {"label_studio_url": f"http://127.0.0.1:{port}"}}


@pytest.fixture
def canary(tmp_path) -> Path:
    """A directory beside the store holding a file, as a target for escapes."""
    directory = tmp_path / "canary"
    directory.mkdir()
    (directory / "secret.txt").write_bytes(CANARY_BYTES)
    return directory


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            full = Path(dirpath) / name
            out[str(full.relative_to(directory))] = (hashlib.sha256(full.read_bytes()).hexdigest(),
                                                    full.stat().st_mtime_ns)
    return out


@pytest.fixture
def seeded(pachls_state):
    backend = pachls_state.backend
    backend.create_repo("images")
    with backend.commit("images", "master", message="first") as c:
        c.put_file("/cats/001.png", b"cat one")
        c.put_file("/cats/002.png", b"cat two")
        c.put_file("/caf\u00e9", b"nfc")
    backend.create_repo("labels")
    with backend.commit("labels", "master", message="labels") as c:
        c.put_file("/cats/001.png.json", b'{"annotations": []}')
    return c.finished


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def path_routes(value: str) -> list[tuple[str, str]]:
    """(method, url below /pachls/api) for every route taking a repo path in the query."""
    v = q(value)
    return [
        ("GET", f"repos/images/commits/master/files?path={v}"),
        ("GET", f"repos/images/commits/master/file?path={v}"),
        ("GET", f"repos/images/diff?to=master&path={v}"),
        ("GET", f"repos/images/commits/master/files?path=%2F&after={v}"),
        ("GET", f"labels/blame?repo=labels&path={v}"),
        ("GET", f"labels/rows?repo=labels&data=images&path={v}"),
    ]


def encodable(value: str) -> bool:
    try:
        value.encode()
        return True
    except UnicodeEncodeError:
        return False


@pytest.mark.parametrize("value,what", REFUSED, ids=[w for _, w in REFUSED])
def test_normalize_path_refuses(value, what):
    with pytest.raises(InvalidPath):
        normalize_path(value)


@pytest.mark.parametrize("value", INSIDE)
def test_odd_names_stay_names(value):
    normalized = normalize_path(value)
    assert normalized.startswith("/") and "/../" not in normalized + "/"


def test_nfc_and_nfd_are_distinct_names():
    """No silent folding: two spellings are two files, so one never overwrites the other."""
    nfc, nfd = unicodedata.normalize("NFC", "/café"), unicodedata.normalize("NFD", "/café")
    assert nfc != nfd and normalize_path(nfc) == nfc and normalize_path(nfd) == nfd


async def test_hostile_paths_on_every_path_route(raw_api, seeded, canary, jp_root_dir):
    before = snapshot(canary)
    refused = 0
    for value, what in REFUSED:
        if not encodable(value):
            continue  # lone surrogates cannot be sent in a URL; the JSON body test below sends them
        for method, url in path_routes(value):
            response = await raw_api(method, url)  # checked against the OpenAPI document
            body = response.body or b""
            assert response.code == 400, f"{what}: {method} {url} -> {response.code} {body[:300]!r}"
            assert b'"invalid_path"' in body or b'"invalid_argument"' in body, body[:300]
            refused += 1
    # Encoded on the wire: one decoding by the server gives the raw path, refused the same way.
    for raw in ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2F..%2F..%2Fetc%2Fpasswd", "%2Fcats%2F%00x", "%2e%2e%5c%2e%2e%2f%2e%2e"):
        for method, url in path_routes("PLACEHOLDER"):
            url = url.replace("PLACEHOLDER", raw)
            response = await raw_api(method, url)
            assert response.code == 400, f"{method} {url} -> {response.code}"
            refused += 1
    for value in INSIDE:
        for method, url in path_routes(value):
            response = await raw_api(method, url)
            body = response.body or b""
            assert response.code in (200, 400, 404), f"{method} {url} -> {response.code}"
            assert PASSWD_MARK not in body and CANARY_BYTES not in body
    print(f"hostile_paths_refused={refused}")
    assert snapshot(canary) == before


async def test_relative_paths_are_refused_not_made_absolute(raw_api, seeded):
    """The API's paths are repo-absolute: ``cats/001.png`` or ``..\\..\\x`` is a 400 naming the rule,
    never read as ``/cats/001.png`` (the ``after`` cursor excepted: it is a path the server returned)."""
    for value in ("cats/001.png", "..\\..\\x", "%2e%2e/etc"):
        for method, url in path_routes(value):
            if "after=" in url:
                continue
            response = await raw_api(method, url)
            assert response.code == 400, f"{method} {url} -> {response.code}"
            body = json.loads(response.body)
            assert body["error"] == "invalid_path" and "repo-absolute" in body["message"], body


async def test_bad_utf8_and_doubled_parameters(raw_api, seeded):
    for url in ("repos/images/commits/master/file?path=%ff%fe",
                "repos/images/commits/master/file?path=%ED%A0%80",  # a surrogate encoded in UTF-8
                "repos/images/commits/master/file?path=%2Fcats%2F001.png&path=%2F..%2Fetc%2Fpasswd"):
        response = await raw_api("GET", url)
        assert response.code == 400, (url, response.code, response.body[:200])


async def test_the_nfd_spelling_reads_nothing_of_the_nfc_file(api, seeded):
    status, _ = await api("GET", "repos/images/commits/master/file", params={"path": "/cafe\u0301"})
    assert status == 404
    status, body = await api("GET", "repos/images/commits/master/files", params={"path": "/"})
    assert status == 200 and "/caf\u00e9" in [item["path"] for item in body["items"]]


async def test_hostile_repo_ref_and_mount_segments(raw_api, seeded, canary):
    """Path segments of the URL: encoded slashes and dots never select anything outside."""
    before = snapshot(canary)
    for segment in ("..", "%2E%2E", "%2e%2e%2f%2e%2e", "..%2F..%2Fetc", "%2Fetc%2Fpasswd", "images%00",
                    "images%2F..", "default%2F..%2Fimages", "%5C..%5C..", "im%C3%A1ges", "%EF%BC%8E%EF%BC%8E"):
        for method, url in (("GET", f"repos/{segment}"), ("GET", f"repos/images/commits/{segment}"),
                            ("GET", f"repos/images/branches/{segment}"), ("GET", f"mounts/{segment}"),
                            ("GET", f"repos/{segment}/commits/master/file?path=%2Fcats%2F001.png"),
                            ("GET", f"mounts/{segment}/changes"), ("POST", f"mounts/{segment}/discard"),
                            ("DELETE", f"repos/{segment}"), ("DELETE", f"mounts/{segment}")):
            response = await raw_api(method, url, body={} if method == "POST" else None)
            assert response.code in (400, 404), f"{method} {url} -> {response.code} {response.body[:200]!r}"
            assert PASSWD_MARK not in (response.body or b"")
    assert snapshot(canary) == before


async def test_hostile_paths_in_json_bodies(api, seeded, canary, pachls_state, jp_root_dir):
    """Addresses, mount names and globs in bodies: refused before anything is made."""
    before = snapshot(canary)
    mounts_before = await api("GET", "mounts")
    for body in (
        {"repo": "images", "name": "../../canary"},
        {"repo": "images", "name": ".."},
        {"repo": "images", "name": "/tmp/x"},
        {"repo": "images", "name": "a/b"},
        {"repo": "images", "name": "x\x00"},
        {"repo": "images", "name": "..\\canary"},
        {"repo": "../images"},
        {"repo": "images", "branch": "../master"},
        {"repo": "images", "name": "\ud800"},
    ):
        status, error = await api("POST", "mounts", body)
        assert status == 400, (body, status, error)
        assert error["error"] in ("invalid_name", "invalid_argument", "parse_error"), error
    assert await api("GET", "mounts") == mounts_before
    repos_before = await api("GET", "repos")
    for data in HOSTILE_ADDRESSES:
        status, error = await api("POST", "labeling/sessions", {"data": data, "labels": "labels@master"})
        # 400 typed (an external Label Studio is asked only after the input is checked); never more.
        assert status == 400, (data, status, error)
        assert error["error"] in ("parse_error", "invalid_path", "invalid_name"), (data, error)
    for glob in HOSTILE_GLOBS:
        status, error = await api("POST", "labeling/sessions", {"data": "images@master", "labels": "labels@master",
                                                                 "glob": glob, "template": "image-classification"})
        assert status in (400, 503), (glob, status, error)
    assert snapshot(canary) == before
    assert await api("GET", "mounts") == mounts_before
    assert await api("GET", "repos") == repos_before
    assert not any(p.name == "canary" for p in Path(pachls_state.mount_dir).parent.rglob("canary")
                   if p != canary)


HOSTILE_ADDRESSES = ("images@master:/../../etc", "images@master:/cats/\x00", "images@master:\ud800",
                     "images@master:/" + "x" * (MAX_PATH + 1), "../images@master", "images@../master")
HOSTILE_GLOBS = ("/../*", "/cats/../../*", "//*", "/cats/./*")


def test_glob_with_an_exploding_brace_expansion_is_refused_up_front():
    from jupyterlab_pachls.pfs import InvalidArgument
    from jupyterlab_pachls.pfs.globbing import glob_plan

    with pytest.raises(InvalidArgument):
        glob_plan("/{1..5000}/*.png")
