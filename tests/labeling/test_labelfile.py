import json

from jupyterlab_pachls.labeling.labelfile import data_path, encode, label_document, label_path, label_values

TASK = {
    "id": 7,
    "data": {"image": "/data/local-files/?d=images/cats/001.png"},
    "annotations": [
        {"id": 12, "completed_by": 2, "updated_by": 1, "result": [{"type": "choices", "value": {"choices": ["dog"]}}],
         "created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:01Z", "lead_time": 3.5,
         "was_cancelled": False, "ground_truth": False, "created_ago": "0 minutes", "unique_id": "x",
         "result_count": 1},
        {"id": 3, "completed_by": {"id": 1, "email": "ana@example.com"},
         "result": [{"type": "rectanglelabels", "value": {"rectanglelabels": ["cat"], "x": 1}}]},
    ],
    "created_ago": "0 minutes",
}
USERS = {1: "ana@example.com", 2: "bo@example.com"}


def test_paths_mirror_the_data():
    assert label_path("/cats/001.png") == "/cats/001.png.json"
    assert label_path("cats/001.png") == "/cats/001.png.json"
    assert data_path("/cats/001.png.json") == "/cats/001.png"


def test_document_keeps_who_what_when_and_the_data_commit():
    doc = label_document(repo="images", commit="c" * 32, path="/cats/001.png", task=TASK, users=USERS)
    assert doc["data"] == {"repo": "images", "commit": "c" * 32, "path": "/cats/001.png"}
    assert [(a["id"], a["created_by"], a["updated_by"]) for a in doc["annotations"]] == [
        (3, "ana@example.com", "ana@example.com"), (12, "bo@example.com", "ana@example.com")]
    assert "annotator" not in doc["annotations"][0]
    assert doc["annotations"][1]["lead_time"] == 3.5
    raw = encode(doc).decode()
    for volatile in ("created_ago", "unique_id", "result_count"):
        assert volatile not in raw


def test_unchanged_annotations_give_identical_bytes():
    shuffled = dict(TASK, annotations=list(reversed(TASK["annotations"])), created_ago="5 minutes")
    one = encode(label_document(repo="images", commit="c" * 32, path="/cats/001.png", task=TASK, users=USERS))
    two = encode(label_document(repo="images", commit="c" * 32, path="/cats/001.png", task=shuffled, users=USERS))
    assert one == two
    assert json.loads(one)["schema"] == "pachls.label/1"


def test_label_values():
    doc = label_document(repo="images", commit="c" * 32, path="/a.png", task=TASK, users=USERS)
    assert [label_values(a) for a in doc["annotations"]] == [["cat"], ["dog"]]
    assert label_values({"result": [{"value": {"text": ["a note"]}}, {"value": {"rating": 4}}]}) == ["a note", "rating 4"]


def test_an_annotation_recreated_by_a_resync_is_written_as_committed_until_it_changes():
    committed = {"id": 12, "created_by": "bo@example.com", "updated_by": "ana@example.com",
                 "created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:01Z", "lead_time": 3.5,
                 "result": [{"type": "choices", "value": {"choices": ["dog"]}}]}
    recreated = {"id": 90, "completed_by": 2, "updated_by": 9, "created_at": "2026-03-01T00:00:00Z",
                 "updated_at": "2026-03-01T00:00:00Z", "lead_time": 3.5, "was_cancelled": False,
                 "result": [{"type": "choices", "value": {"choices": ["dog"]}}]}
    users = {2: "bo@example.com", 9: "admin@localhost", 4: "cy@example.com"}
    task = {"id": 7, "annotations": [recreated]}
    doc = label_document(repo="images", commit="c" * 32, path="/a.png", task=task, users=users,
                         restored={"90": committed})
    assert doc["annotations"] == [committed]  # same id, authors and times: no change to commit
    changed = dict(recreated, updated_by=4, updated_at="2026-03-02T00:00:00Z",
                   result=[{"type": "choices", "value": {"choices": ["cat"]}}])
    doc = label_document(repo="images", commit="c" * 32, path="/a.png", task={"id": 7, "annotations": [changed]},
                         users=users, restored={"90": committed})
    [annotation] = doc["annotations"]
    assert (annotation["id"], annotation["created_by"], annotation["updated_by"], annotation["created_at"],
            annotation["updated_at"]) == (12, "bo@example.com", "cy@example.com", "2026-01-02T00:00:00Z",
                                           "2026-03-02T00:00:00Z")
