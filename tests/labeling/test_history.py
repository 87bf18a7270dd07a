import dataclasses
import json

import pytest

from jupyterlab_pachls.labeling.history import blame, diff_labels, session_of_data
from jupyterlab_pachls.labeling.labelfile import encode, label_document
from jupyterlab_pachls.pfs import LocalBackend


def doc(annotations, commit="d" * 32, path="/cats/001.png"):
    task = {"id": 1, "annotations": [
        {"id": i, "completed_by": who, "result": [{"type": "choices", "value": {"choices": [label]}}]}
        for i, who, label in annotations
    ]}
    return encode(label_document(repo="images", commit=commit, path=path, task=task,
                                 users={1: "ana@example.com", 2: "bo@example.com"}))


@pytest.fixture
def labels(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("labels")
    rounds = []
    with backend.commit("labels", "master", message="round 1", author="ana") as c:
        c.put_file("/cats/001.png.json", doc([(1, 1, "cat")]))
        c.put_file("/cats/002.png.json", doc([(2, 1, "cat")], path="/cats/002.png"))
    rounds.append(c.finished)
    with backend.commit("labels", "master", message="unrelated") as c:
        c.put_file("/cats/002.png.json", doc([(2, 1, "dog")], path="/cats/002.png"))
    rounds.append(c.finished)
    with backend.commit("labels", "master", message="round 2", author="bo") as c:
        c.put_file("/cats/001.png.json", doc([(1, 1, "cat"), (3, 2, "dog")]))
    rounds.append(c.finished)
    with backend.commit("labels", "master", message="round 3", author="bo") as c:
        c.put_file("/cats/001.png.json", doc([(3, 2, "lynx")]))
    rounds.append(c.finished)
    yield backend, rounds
    backend.close()


def test_blame_names_every_round_that_touched_the_label(labels):
    backend, rounds = labels
    entries = blame(backend, "labels", "master", "/cats/001.png")
    assert [e.commit for e in entries] == [rounds[3].id, rounds[2].id, rounds[0].id]
    assert [e.change for e in entries] == ["modified", "modified", "added"]
    assert entries[0].annotators == ("bo@example.com",)
    assert entries[1].annotators == ("ana@example.com", "bo@example.com")
    assert entries[1].labels == ("cat", "dog")
    assert entries[0].labels == ("lynx",)
    assert entries[2].data_commit == "d" * 32
    assert blame(backend, "labels", "master", "/cats/001.png.json") == entries


def test_blame_reads_each_commit_once(labels):
    from test_file_history import CountingReads

    backend, rounds = labels
    counting = CountingReads(backend)
    assert blame(counting, "labels", "master", "/cats/001.png") == blame(backend, "labels", "master", "/cats/001.png")
    assert set(counting.inspected.values()) == {1} and set(counting.read.values()) == {1}
    assert set(counting.read) == {rounds[3].id, rounds[2].id, rounds[1].id, rounds[0].id}


def test_blame_of_an_unlabeled_file_is_empty(labels):
    backend, _ = labels
    assert blame(backend, "labels", "master", "/dogs/9.png") == []


def test_diff_at_annotation_level(labels):
    backend, rounds = labels
    changes = diff_labels(backend, "labels", rounds[1].id, rounds[3].id)
    summary = [(c.path, c.annotation, c.change, c.annotator, c.before, c.after) for c in changes]
    assert summary == [
        ("/cats/001.png", 1, "deleted", "ana@example.com", ("cat",), ()),
        ("/cats/001.png", 3, "added", "bo@example.com", (), ("lynx",)),
    ]
    changes = diff_labels(backend, "labels", rounds[2].id, rounds[3].id)
    assert [(c.annotation, c.change, c.before, c.after) for c in changes] == [
        (1, "deleted", ("cat",), ()), (3, "modified", ("dog",), ("lynx",)),
    ]


def test_label_rows_tie_each_annotation_to_data_and_label_commits(labels):
    from jupyterlab_pachls.labeling.rows import label_rows

    backend, rounds = labels
    rows = label_rows(backend, "labels", "master")
    assert [(r["data_path"], r["annotation"], r["annotator"], r["labels"]) for r in rows] == [
        ("/cats/001.png", 3, "bo@example.com", ["lynx"]),
        ("/cats/002.png", 2, "ana@example.com", ["dog"]),
    ]
    assert {r["label_commit"] for r in rows} == {rounds[3].id}
    assert {r["data_commit"] for r in rows} == {"d" * 32}
    old = label_rows(backend, "labels", rounds[0].id)
    assert [(r["data_path"], r["labels"]) for r in old] == [("/cats/001.png", ["cat"]), ("/cats/002.png", ["cat"])]
    assert label_rows(backend, "labels", "master", data="other") == []


def test_a_label_changed_by_someone_else_names_the_changer(tmp_path):
    """Ana labels cat; Bo changes her annotation to bird: blame, the diff and rows name both."""
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("labels")
    users = {1: "ana@example.com", 2: "bo@example.com"}

    def round_file(label, updated_by):
        task = {"id": 7, "annotations": [{"id": 11, "completed_by": 1, "updated_by": updated_by,
                                          "result": [{"type": "choices", "value": {"choices": [label]}}]}]}
        return encode(label_document(repo="images", commit="d" * 32, path="/cats/001.png", task=task, users=users))

    with backend.commit("labels", "master", message="round 1", author="Ana <ana@example.com>") as first:
        first.put_file("/cats/001.png.json", round_file("cat", 1))
    with backend.commit("labels", "master", message="round 2", author="Bo <bo@example.com>") as second:
        second.put_file("/cats/001.png.json", round_file("bird", 2))
    try:
        entries = blame(backend, "labels", "master", "/cats/001.png")
        assert [(e.change, e.labels, e.annotators, e.changed_by) for e in entries] == [
            ("modified", ("bird",), ("ana@example.com",), ("bo@example.com",)),
            ("added", ("cat",), ("ana@example.com",), ("ana@example.com",)),
        ]
        [change] = diff_labels(backend, "labels", first.finished.id, second.finished.id)
        assert (change.annotator, change.changed_by, change.before, change.after) == (
            "ana@example.com", ("bo@example.com",), ("cat",), ("bird",))
        from jupyterlab_pachls.labeling.rows import label_rows

        [row] = label_rows(backend, "labels", "master")
        assert (row["created_by"], row["updated_by"], row["annotator"]) == (
            "ana@example.com", "bo@example.com", "ana@example.com")
    finally:
        backend.close()


def test_old_label_files_naming_only_the_annotator_are_read(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("labels")
    old = {"schema": "pachls.label/1", "data": {"repo": "images", "commit": "d" * 32, "path": "/a.png"},
           "task": {"id": 1}, "annotations": [{"id": 3, "annotator": "ana@example.com",
                                               "result": [{"value": {"choices": ["cat"]}}]}]}
    with backend.commit("labels", "master", message="old", author="ana") as c:
        c.put_file("/a.png.json", json.dumps(old).encode())
    try:
        [entry] = blame(backend, "labels", "master", "/a.png")
        assert (entry.annotators, entry.changed_by) == (("ana@example.com",), ("ana@example.com",))
        [change] = diff_labels(backend, "labels", None, c.finished.id)
        assert (change.annotator, change.changed_by) == ("ana@example.com", ("ana@example.com",))
        from jupyterlab_pachls.labeling.rows import label_rows

        [row] = label_rows(backend, "labels", "master")
        assert (row["created_by"], row["updated_by"]) == ("ana@example.com", "ana@example.com")
    finally:
        backend.close()


def test_blame_reads_the_bytes_of_a_store_that_gives_no_hash(labels):
    """A store may give no file hash at all: blame then compares the bytes, and finds the same rounds."""
    backend, rounds = labels

    class NoHashes:
        def __getattr__(self, name):
            return getattr(backend, name)

        def inspect_file(self, *args, **kwargs):
            return dataclasses.replace(backend.inspect_file(*args, **kwargs), hash=None)

    expected = [e.commit for e in blame(backend, "labels", "master", "/cats/001.png")]
    assert expected == [rounds[3].id, rounds[2].id, rounds[0].id]
    assert [e.commit for e in blame(NoHashes(), "labels", "master", "/cats/001.png")] == expected


def test_the_session_of_a_mount_is_the_newest_on_its_commit_else_on_its_repo():
    from types import SimpleNamespace as S

    old = S(id="old", data_repo="images", data_commit="c1", created=1.0)
    new = S(id="new", data_repo="images", data_commit="c2", created=2.0)
    other = S(id="other", data_repo="videos", data_commit="c1", created=3.0)
    sessions = [old, new, other]
    assert session_of_data(sessions, "images", "c1") is old  # the session labeling the mount's very commit
    assert session_of_data(sessions, "images", "c9") is new  # else the newest labeling the repo
    assert session_of_data(sessions, "images", None) is new  # a mount of a branch with no commit yet
    assert session_of_data(sessions, "labels", "c1") is None
