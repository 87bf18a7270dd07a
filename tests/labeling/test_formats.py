"""Labels in training formats: committed label files rendered through Label Studio's converter
(no Label Studio running), read back with independent readers (pycocotools for COCO).

The label files are what a label commit writes: ``label_document`` over tasks shaped as Label
Studio's API returns them (rectangle results carry the image size and percent coordinates)."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import os
import re
import sys
import threading
import time
import traceback
import json
import xml.etree.ElementTree as ElementTree
import zipfile

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pycocotools.coco import COCO

from jupyterlab_pachls import connect
from jupyterlab_pachls.client import ServerClient
from jupyterlab_pachls.labeling.formats import (FormatMismatch, InvalidLabelFile, LabelingConfig,
                                                NotLabels, export_labels)
from jupyterlab_pachls.labeling.labelfile import encode, label_document
from jupyterlab_pachls.magics import PachlsMagics
from jupyterlab_pachls.pfs import InvalidArgument, LocalBackend, NotFound, PfsError, Provenance

from openapi_check import api, openapi, raw_api  # noqa: F401  (responses checked against openapi.yaml)

USERS = {1: "ana@example.com", 2: "bo@example.com"}
WIDTH, HEIGHT = 640, 480


def box(label: str, x: float, y: float, w: float, h: float, region: str = "r") -> dict:
    """A RectangleLabels result as Label Studio stores it: percent of the image, plus its size."""
    return {"id": region, "from_name": "label", "to_name": "image", "type": "rectanglelabels", "origin": "manual",
            "original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}


def label_file(data_commit: str, path: str, annotations: list[tuple[int, int, list[dict]]]) -> bytes:
    task = {"id": 7, "annotations": [
        {"id": annotation_id, "completed_by": who, "result": results, "lead_time": 2.5,
         "created_at": f"2026-01-0{annotation_id}T10:00:00Z", "updated_at": f"2026-01-0{annotation_id}T10:00:00Z"}
        for annotation_id, who, results in annotations]}
    return encode(label_document(repo="images", commit=data_commit, path=path, task=task, users=USERS))


#: data path -> boxes (label, x, y, w, h in percent), as the two rounds below commit them
BOXES = {
    "/cats/001.png": [("cat", 10.0, 20.0, 30.0, 40.0), ("dog", 50.5, 5.25, 25.0, 12.5)],
    "/dogs/001.png": [("dog", 0.0, 0.0, 100.0, 100.0)],
    "/cats/002.png": [("cat", 12.5, 25.0, 50.0, 50.0)],
}


def fill(backend) -> dict:
    """images: two commits; labels: two bounding-box rounds, each made on one images commit."""
    backend.create_repo("images")
    backend.create_repo("labels")
    with backend.commit("images", "master", message="first images", author="ana") as c:
        c.put_file("/cats/001.png", b"png-1")
        c.put_file("/dogs/001.png", b"png-2")
    first = c.finished.id
    with backend.commit("images", "master", message="more images", author="ana") as c:
        c.put_file("/cats/002.png", b"png-3")
    second = c.finished.id

    def results(path):
        return [box(*b, region=f"r{i}") for i, b in enumerate(BOXES[path])]

    with backend.commit("labels", "master", message="round 1", author="ana",
                        provenance=[Provenance("images", first)]) as c:
        c.put_file("/cats/001.png.json", label_file(first, "/cats/001.png", [(1, 1, results("/cats/001.png"))]))
        c.put_file("/dogs/001.png.json", label_file(first, "/dogs/001.png", [(2, 2, results("/dogs/001.png"))]))
    with backend.commit("labels", "master", message="round 2", author="bo",
                        provenance=[Provenance("images", second)]) as c:
        c.put_file("/cats/002.png.json", label_file(second, "/cats/002.png", [(3, 1, results("/cats/002.png"))]))
    labels = c.finished.id
    # what the data commit of each label is: the round's provenance
    return {"first": first, "second": second, "labels": labels,
            "address": {"/cats/001.png": f"images@{first}:/cats/001.png",
                        "/dogs/001.png": f"images@{first}:/dogs/001.png",
                        "/cats/002.png": f"images@{second}:/cats/002.png"}}


@pytest.fixture
def store(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    made = fill(backend)
    yield backend, made
    backend.close()


def pixels(x, y, w, h):
    return [x * WIDTH / 100, y * HEIGHT / 100, w * WIDTH / 100, h * HEIGHT / 100]


def check_coco(raw: bytes, made: dict, tmp_path, categories=("cat", "dog")) -> None:
    path = tmp_path / "coco.json"
    path.write_bytes(raw)
    coco = COCO(str(path))  # pycocotools indexes it (and asserts its shape)
    assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == list(categories)
    assert sorted(coco.cats) == list(range(len(categories)))
    by_file = {image["file_name"]: image for image in coco.dataset["images"]}
    assert set(by_file) == set(made["address"].values())  # each image at the data commit its label was made on
    for data_path, address in made["address"].items():
        image = by_file[address]
        assert (image["width"], image["height"]) == (WIDTH, HEIGHT)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        got = sorted((coco.cats[a["category_id"]]["name"], a["bbox"]) for a in annotations)
        want = sorted((label, pixels(x, y, w, h)) for label, x, y, w, h in BOXES[data_path])
        assert [name for name, _ in got] == [name for name, _ in want]
        for (_, bbox), (_, expected) in zip(got, want):
            assert bbox == pytest.approx(expected)
        for a in annotations:
            assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3]) and a["iscrowd"] == 0
    assert coco.dataset["info"]["description"] == f"labels@{made['labels']}"


def render(backend, fmt, ref="master", **kwargs) -> bytes:
    with export_labels(backend, "labels", ref, fmt, **kwargs) as export:
        return export.path.read_bytes()


def test_coco_of_a_box_round_loads_with_pycocotools_with_the_right_boxes(store, tmp_path):
    backend, made = store
    check_coco(render(backend, "COCO"), made, tmp_path)
    # the same commit gives the same bytes (the converter's "now" is replaced by the commit's time)
    assert render(backend, "coco") == render(backend, "COCO", ref=made["labels"])


def test_coco_of_labels_on_a_cluster(tmp_path):
    """The same round through the Pachyderm backend (real gRPC to `jupyter pachls serve`'s server)."""
    from jupyterlab_pachls.pfs import open_backend
    from jupyterlab_pachls.pfs.server import make_server

    served = LocalBackend(tmp_path / "served")
    server, port = make_server(served, "127.0.0.1:0")
    backend = open_backend({"kind": "pachyderm", "pachd_address": f"grpc://127.0.0.1:{port}"})
    try:
        made = fill(backend)
        check_coco(render(backend, "COCO"), made, tmp_path)
    finally:
        backend.close()
        server.stop(grace=None).wait()
        served.close()


def test_an_earlier_round_exports_only_its_own_labels(store, tmp_path):
    backend, made = store
    document = json.loads(render(backend, "COCO", ref="master^1"))
    assert sorted(i["file_name"] for i in document["images"]) == [
        made["address"]["/cats/001.png"], made["address"]["/dogs/001.png"]]


def test_classes_fix_the_category_ids(store, tmp_path):
    backend, made = store
    check_coco(render(backend, "COCO", classes=["dog", "cat", "bird"]), made, tmp_path,
               categories=("dog", "cat", "bird"))
    archive = zipfile.ZipFile(io.BytesIO(render(backend, "YOLO", classes=["dog", "cat", "bird"])))
    assert archive.read("classes.txt").decode() == "dog\ncat\nbird\n"
    assert archive.read("labels/dogs/001.txt").decode().split()[0] == "0"
    with pytest.raises(InvalidArgument, match="'dog'"):
        render(backend, "COCO", classes=["cat"])
    # "dog, cat" as typed over REST and in %pachls: the names, not the spaces
    assert render(backend, "COCO", classes=["dog", " cat ", "bird"]) == render(backend, "COCO",
                                                                             classes=["dog", "cat", "bird"])
    for bad in ([], ["cat", "cat"], ["a,b"], [""], "cat"):
        with pytest.raises(InvalidArgument):
            render(backend, "COCO", classes=bad)


def test_yolo_is_a_zip_mirroring_the_data_paths(store):
    backend, made = store
    archive = zipfile.ZipFile(io.BytesIO(render(backend, "YOLO")))
    assert sorted(archive.namelist()) == ["classes.txt", "labels/cats/001.txt", "labels/cats/002.txt",
                                          "labels/dogs/001.txt", "notes.json", "sources.json"]
    assert archive.read("classes.txt").decode() == "cat\ndog\n"
    sources = json.loads(archive.read("sources.json"))
    assert sources["labels"] == f"labels@{made['labels']}"
    for data_path, address in made["address"].items():
        name = f"labels{data_path[:-4]}.txt"
        assert sources["files"][name] == address
        lines = [line.split() for line in archive.read(name).decode().splitlines()]
        want = [(["cat", "dog"].index(label), (x + w / 2) / 100, (y + h / 2) / 100, w / 100, h / 100)
                for label, x, y, w, h in BOXES[data_path]]
        assert sorted(int(l[0]) for l in lines) == sorted(w[0] for w in want)
        for line, expected in zip(sorted(lines, key=lambda l: float(l[1])), sorted(want, key=lambda w: w[1])):
            assert int(line[0]) == expected[0]
            assert [float(v) for v in line[1:]] == pytest.approx(list(expected[1:]))


def test_voc_is_a_zip_of_pascal_xml_with_pixel_boxes(store):
    backend, made = store
    archive = zipfile.ZipFile(io.BytesIO(render(backend, "VOC")))
    assert sorted(archive.namelist()) == ["Annotations/cats/001.xml", "Annotations/cats/002.xml",
                                          "Annotations/dogs/001.xml", "sources.json"]
    for data_path, address in made["address"].items():
        root = ElementTree.fromstring(archive.read(f"Annotations{data_path[:-4]}.xml"))
        assert root.findtext("filename") == data_path.rsplit("/", 1)[1]
        assert root.findtext("path") == address
        assert (root.findtext("size/width"), root.findtext("size/height")) == (str(WIDTH), str(HEIGHT))
        corners = ("xmin", "ymin", "xmax", "ymax")
        objects = sorted((o.findtext("name"), [int(o.findtext(f"bndbox/{k}")) for k in corners])
                         for o in root.iter("object"))
        # the converter truncates pixels: xmax = int(x) + int(w)
        want = []
        for label, x, y, w, h in BOXES[data_path]:
            left, top = int(x / 100 * WIDTH), int(y / 100 * HEIGHT)
            want.append((label, [left, top, left + int(w / 100 * WIDTH), top + int(h / 100 * HEIGHT)]))
        assert objects == sorted(want)


def test_csv_and_json_min_name_the_data_at_its_commit(store):
    backend, made = store
    rows = list(csv.DictReader(io.StringIO(render(backend, "CSV").decode())))
    assert sorted(r["image"] for r in rows) == sorted(made["address"].values())
    by_image = {r["image"]: r for r in rows}
    for data_path, address in made["address"].items():
        regions = json.loads(by_image[address]["label"])
        assert sorted(r["rectanglelabels"][0] for r in regions) == sorted(b[0] for b in BOXES[data_path])
    assert by_image[made["address"]["/dogs/001.png"]]["annotator"] == "bo@example.com"
    records = json.loads(render(backend, "JSON_MIN"))
    assert sorted(r["image"] for r in records) == sorted(made["address"].values())
    first = next(r for r in records if r["image"] == made["address"]["/cats/001.png"])
    regions = [(r["x"], r["y"], r["width"], r["height"]) for r in first["label"]]
    assert regions == [b[1:] for b in BOXES["/cats/001.png"]]
    assert first["annotator"] == "ana@example.com" and first["lead_time"] == 2.5


def test_bad_inputs_are_typed_errors(store, tmp_path):
    backend, made = store
    with pytest.raises(InvalidArgument, match="unknown export format 'PNG'") as unknown:
        render(backend, "PNG")
    assert unknown.value.details["formats"] == ["COCO", "YOLO", "VOC", "CSV", "JSON_MIN"]
    with pytest.raises(NotLabels, match="holds no label file") as not_labels:
        export_labels(backend, "images", "master", "COCO")
    assert not_labels.value.code == "not_labels" and not_labels.value.http_status == 400
    with pytest.raises(NotFound):
        render(backend, "COCO", ref="nosuch")
    with pytest.raises(NotFound):
        export_labels(backend, "nosuch", "master", "COCO")
    # text classification: choices on text fit CSV and JSON_MIN, not the detection formats
    backend.create_repo("texts")
    backend.create_repo("sentiment")
    with backend.commit("texts", "master", message="t") as c:
        c.put_file("/a.txt", b"good")
    text = c.finished.id
    task = {"annotations": [{"id": 9, "completed_by": 1, "result": [
        {"from_name": "choice", "to_name": "text", "type": "choices", "value": {"choices": ["positive"]}}]}]}
    with backend.commit("sentiment", "master", message="s", provenance=[Provenance("texts", text)]) as c:
        c.put_file("/a.txt.json", encode(label_document(repo="texts", commit=text, path="/a.txt", task=task,
                                                        users=USERS)))
    for fmt in ("COCO", "YOLO", "VOC"):
        with pytest.raises(FormatMismatch, match=f"{fmt} needs .* Choices on Text") as mismatch:
            export_labels(backend, "sentiment", "master", fmt)
        assert mismatch.value.details["fits"] == ["CSV", "JSON_MIN"]
    with export_labels(backend, "sentiment", "master", "CSV") as export:
        (row,) = csv.DictReader(io.StringIO(export.path.read_text()))
        assert row["text"] == f"texts@{text}:/a.txt" and row["choice"] == "positive"
    # image classification: choices on images (no region, no image size in the results)
    backend.create_repo("kinds")
    task = {"annotations": [{"id": 10, "completed_by": 2, "result": [
        {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["Cat"]}}]}]}
    with backend.commit("kinds", "master", message="k", provenance=[Provenance("images", made["first"])]) as c:
        c.put_file("/cats/001.png.json", encode(label_document(
            repo="images", commit=made["first"], path="/cats/001.png", task=task, users=USERS)))
    with pytest.raises(FormatMismatch, match="Choices on Image"):
        export_labels(backend, "kinds", "master", "COCO")
    with export_labels(backend, "kinds", "master", "JSON_MIN") as export:
        assert json.loads(export.path.read_text())[0]["image"] == made["address"]["/cats/001.png"]
    # YOLO and VOC name label files by data name without extension: two such names collide
    with backend.commit("labels", "master", message="jpg too") as c:
        c.put_file("/cats/001.jpg.json", label_file(made["first"], "/cats/001.jpg", [(4, 1, [box("cat", 1, 1, 1, 1)])]))
    with pytest.raises(FormatMismatch, match="/cats/001.jpg and /cats/001.png|/cats/001.png and /cats/001.jpg"):
        render(backend, "YOLO")


def test_the_config_is_rebuilt_from_the_annotations():
    facts = LabelingConfig()
    facts.add("/a.png", [{"result": [box("cat", 1, 1, 1, 1), {"from_name": "choice", "to_name": "image",
                                                               "type": "choices", "value": {"choices": ["blurry"]}}]}])
    config, keys = facts.render()
    assert keys == ["image"]
    assert '<Image name="image" value="$image"/>' in config
    assert '<RectangleLabels name="label" toName="image"><Label value="cat" category="0"/></RectangleLabels>' in config
    assert '<Choices name="choice" toName="image"><Choice value="blurry"/></Choices>' in config


# -- the Python API (direct) and the magic ---------------------------------------------------------
@pytest.fixture
def client(tmp_path):
    backend = LocalBackend(tmp_path / "store")
    made = fill(backend)
    backend.close()
    with connect(store=str(tmp_path / "store")) as opened:
        yield opened, made


def test_direct_client_writes_the_export(client, tmp_path):
    pachls, made = client
    path = pachls.export_labels("labels@master", "COCO", tmp_path)
    assert path == tmp_path / f"labels-{made['labels'][:12]}-coco.json"
    check_coco(path.read_bytes(), made, tmp_path)
    named = pachls.export_labels("labels@master", "yolo", tmp_path / "train.zip", classes=["dog", "cat"])
    assert zipfile.ZipFile(named).read("classes.txt") == b"dog\ncat\n"
    with pytest.raises(NotLabels):
        pachls.export_labels("images@master", "COCO", tmp_path / "x.json")
    with pytest.raises(InvalidArgument, match="is not a directory"):
        pachls.export_labels("labels@master", "COCO", tmp_path / "no" / "x.json")
    with pytest.raises(InvalidArgument, match="no such directory"):
        pachls.export_labels("labels@master", "COCO", f"{tmp_path}/no/")
    assert not (tmp_path / "x.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial left


def test_export_magic(client, tmp_path, capsys):
    pachls, made = client
    ip = InteractiveShell.instance()
    try:
        ip.register_magics(PachlsMagics(ip, client_factory=lambda: pachls))
        path = ip.run_line_magic("pachls", f"export labels@master --format VOC {tmp_path}")
        assert path == tmp_path / f"labels-{made['labels'][:12]}-voc.zip"
        out = capsys.readouterr().out
        assert out.startswith(f"Exported labels@master as VOC to {path} (") and out.endswith(" bytes)\n")
        assert "Annotations/cats/002.xml" in zipfile.ZipFile(path).namelist()
        assert ip.run_line_magic("pachls", f"export labels@master --format PNG {tmp_path}") is None
        assert capsys.readouterr().err == ("pachls: unknown export format 'PNG'; choose one of COCO, YOLO, VOC, "
                                           "CSV, JSON_MIN\n")
        assert ip.run_line_magic("pachls", "export labels@master") is None
        assert "the following arguments are required: --format" in capsys.readouterr().err
        ip.run_line_magic("pachls", f"export labels@master --format COCO --classes cat {tmp_path}")
        assert capsys.readouterr().err.startswith("pachls: the labels hold 'dog', which classes does not list")
    finally:
        InteractiveShell.clear_instance()


# -- REST and the Python API through the server ----------------------------------------------------
async def test_export_route(raw_api, api, pachls_state, tmp_path):
    made = await asyncio.to_thread(fill, pachls_state.backend)
    response = await raw_api("GET", "labels/export?repo=labels&ref=master&format=COCO")
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="labels-{made["labels"][:12]}-coco.json"')
    assert int(response.headers["Content-Length"]) == len(response.body)
    check_coco(response.body, made, tmp_path)
    response = await raw_api("GET", "labels/export?repo=labels&format=yolo&classes=dog,%20cat")  # "dog, cat"
    assert response.code == 200 and response.headers["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(response.body)).read("classes.txt") == b"dog\ncat\n"
    response = await raw_api("GET", "labels/export?repo=labels&format=CSV")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/csv")
    for params, code, error in [
        ({"repo": "labels"}, 400, "invalid_argument"),
        ({"repo": "labels", "format": "PNG"}, 400, "invalid_argument"),
        ({"repo": "labels", "format": "COCO", "classes": "cat"}, 400, "invalid_argument"),
        ({"repo": "labels", "format": "COCO", "classes": "cat,,dog"}, 400, "invalid_argument"),
        ({"repo": "labels", "format": "COCO", "classes": "cat, cat"}, 400, "invalid_argument"),
        ({"repo": "images", "format": "COCO"}, 400, "not_labels"),
        ({"repo": "labels", "ref": "nosuch", "format": "COCO"}, 404, "not_found"),
        ({"repo": "nosuch", "format": "COCO"}, 404, "not_found"),
        ({"repo": "../x", "format": "COCO"}, 400, "invalid_name"),
        ({"repo": "labels", "ref": "a^b", "format": "COCO"}, 400, "parse_error"),
    ]:
        status, body = await api("GET", "labels/export", params=params)
        assert (status, body["error"]) == (code, error), (params, body)


async def test_server_client_export(http_server_client, pachls_state, jp_http_port, jp_base_url, jp_auth_header,
                                    tmp_path):
    """The Python API through a Jupyter server (``http_server_client`` makes it listen on jp_http_port)."""
    made = await asyncio.to_thread(fill, pachls_state.backend)
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    client = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)

    def use() -> None:
        path = client.export_labels("labels@master", "COCO", tmp_path)
        assert path.name == f"labels-{made['labels'][:12]}-coco.json"
        check_coco(path.read_bytes(), made, tmp_path)
        records = json.loads(client.export_labels("labels@master^1", "JSON_MIN", tmp_path / "r1.json").read_bytes())
        assert len(records) == 2
        with pytest.raises(PfsError) as refused:
            client.export_labels("images@master", "COCO", tmp_path / "x.json")
        assert refused.value.code == "not_labels" and refused.value.status == 400
        assert not (tmp_path / "x.json").exists()
        with pytest.raises(InvalidArgument):  # checked before any request
            client.export_labels("labels@master", "BMP", tmp_path)

    try:
        await asyncio.to_thread(use)
    finally:
        client.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_exports_do_not_leave_files_open(store):
    """Reading label files on new threads per export left the embedded store one SQLite connection
    per new thread (kept until the store closes): ~16 more open files per export."""
    backend, made = store
    with backend.commit("labels", "master", message="more files") as c:
        for i in range(20):
            c.put_file(f"/more/{i:03}.png.json", label_file(made["first"], f"/more/{i:03}.png",
                                                             [(1, 1, [box("cat", 1, 1, 1, 1)])]))
    import label_studio_sdk.converter  # noqa: F401  (what loading it opens is not the exports')

    before = open_fds()
    for _ in range(12):
        render(backend, "COCO")
    # read on the calling thread: its one connection, however many exports
    assert open_fds() - before <= 2


def test_annotations_without_creation_time_export(store):
    """Label files may hold annotations without created_at (older label files, imported ones)."""
    backend, made = store
    document = json.loads(label_file(made["first"], "/cats/001.png", [(1, 1, [box("cat", 1, 1, 1, 1)]),
                                                                       (2, 2, [box("dog", 2, 2, 2, 2)])]))
    for annotation in document["annotations"]:
        del annotation["created_at"]
    with backend.commit("labels", "master", message="no times") as c:
        c.put_file("/cats/001.png.json", encode(document))
    for fmt in ("COCO", "YOLO", "VOC", "CSV", "JSON_MIN"):
        assert render(backend, fmt)
    labels = json.loads(render(backend, "COCO"))["annotations"]
    assert len([a for a in labels if a["bbox"][0] in (6.4, 12.8)]) == 2  # both annotators' boxes


@pytest.mark.parametrize("field, value, said", [
    ("path", "/../../../tmp/evil.png", "data.path '/../../../tmp/evil.png' is not '/evil.png'"),  # zip-slip
    ("path", "/elsewhere.png", "data.path '/elsewhere.png' is not '/evil.png'"),
    ("commit", "master", "data.commit 'master' is not a commit id"),  # a branch moves: not what was labeled
    ("repo", "a/b/c", "data.repo is not a repo name"),
])
def test_a_label_file_naming_its_data_otherwise_is_refused(store, field, value, said):
    backend, made = store
    document = json.loads(label_file(made["first"], "/evil.png", [(1, 1, [box("cat", 1, 1, 1, 1)])]))
    document["data"][field] = value
    with backend.commit("labels", "master", message="bad data block") as c:
        c.put_file("/evil.png.json", encode(document))
    for fmt in ("YOLO", "COCO", "CSV"):
        with pytest.raises(InvalidLabelFile, match=re.escape(said)) as refused:
            render(backend, fmt)
        assert refused.value.code == "invalid_label_file" and refused.value.details["path"] == "/evil.png.json"
        assert f"labels@{backend.inspect_commit('labels', 'master').id}:/evil.png.json" in str(refused.value)


def test_a_refused_export_leaves_no_read_running(store):
    """A read that fails ends the export only once the other reads are done: the caller may close
    the backend next, and the embedded store's SQLite crashes on a connection closed while in use."""
    backend, made = store
    document = json.loads(label_file(made["first"], "/a.png", [(1, 1, [box("cat", 1, 1, 1, 1)])]))
    document["data"]["commit"] = "master"
    read = backend.get_file

    def get_file(repo, commit, path, *args, **kwargs):
        if path != "/a.png.json":
            time.sleep(0.3)  # the others are still reading when /a.png.json is refused
        return read(repo, commit, path, *args, **kwargs)

    with backend.commit("labels", "master", message="bad data block") as c:
        c.put_file("/a.png.json", encode(document))
    backend.get_file = get_file
    reading = lambda: [t for t in threading.enumerate() if t.name.startswith("pachls-export-read")
                       and "get_file" in "".join(traceback.format_stack(sys._current_frames()[t.ident]))]
    with pytest.raises(InvalidLabelFile):
        render(backend, "COCO")
    assert reading() == []


def test_label_files_are_not_all_held_at_once(store):
    """An export reads one label file after the other into a scratch file: while the last is read, the
    annotations of the earlier ones are no longer in memory (a few reads at once only)."""
    backend, made = store
    many = 200
    with backend.commit("labels", "master", message="many") as c:
        for i in range(many):
            c.put_file(f"/many/{i:03}.png.json", label_file(made["first"], f"/many/{i:03}.png",
                                                             [(1, 1, [box("cat", 1, 1, 1, 1, region="held")])]))
    read_tree = backend.read_tree
    held = []

    def counted(repo, commit, path="/"):
        for info, chunks in read_tree(repo, commit, path):
            if info.path == f"/many/{many - 1:03}.png.json":
                gc.collect()
                held.append(sum(1 for o in gc.get_objects() if type(o) is dict and o.get("id") == "held"))
            yield info, chunks

    backend.read_tree = counted
    document = json.loads(render(backend, "JSON_MIN"))
    assert len(document) == many + 3  # every label file is in the export
    assert held and held[0] <= 2


def test_choices_are_not_categories_of_regions(store):
    """Boxes plus a whole-image choice (``blurry``): the choice is no COCO category, YOLO class or VOC object."""
    backend, made = store
    blurry = {"id": "c", "from_name": "quality", "to_name": "image", "type": "choices",
              "value": {"choices": ["blurry"]}}
    with backend.commit("labels", "master", message="boxes and a choice") as c:
        c.put_file("/cats/001.png.json", label_file(made["first"], "/cats/001.png",
                                                    [(1, 1, [box("cat", 10, 20, 30, 40), blurry])]))
    coco = json.loads(render(backend, "COCO"))
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
    assert {a["category_id"] for a in coco["annotations"]} <= {0, 1}
    yolo = zipfile.ZipFile(io.BytesIO(render(backend, "YOLO")))
    assert yolo.read("classes.txt").decode() == "cat\ndog\n"
    assert [c["name"] for c in json.loads(yolo.read("notes.json"))["categories"]] == ["cat", "dog"]
    voc = zipfile.ZipFile(io.BytesIO(render(backend, "VOC")))
    names = [o.findtext("name") for o in ElementTree.fromstring(voc.read("Annotations/cats/001.xml")).iter("object")]
    assert names == ["cat"]
    # what classifies the whole image stays in the formats that carry it
    (record,) = [r for r in json.loads(render(backend, "JSON_MIN")) if r["image"].endswith("/cats/001.png")]
    assert record["quality"] == "blurry"


def test_coco_has_one_image_per_file_and_only_sized_ones(store, tmp_path):
    """Two annotators on one image: one COCO image with both's boxes. An annotation without regions
    gives no image size: that image is left out (COCO readers need width and height)."""
    backend, made = store
    with backend.commit("labels", "master", message="two annotators, one empty") as c:
        c.put_file("/cats/001.png.json", label_file(made["first"], "/cats/001.png",
                                                    [(1, 1, [box("cat", 10, 20, 30, 40)]),
                                                     (2, 2, [box("dog", 50, 50, 10, 10)])]))
        c.put_file("/dogs/001.png.json", label_file(made["first"], "/dogs/001.png", [(3, 1, [])]))
    path = tmp_path / "coco.json"
    path.write_bytes(render(backend, "COCO"))
    coco = COCO(str(path))
    names = [image["file_name"] for image in coco.dataset["images"]]
    assert sorted(names) == sorted([made["address"]["/cats/001.png"], made["address"]["/cats/002.png"]])
    assert all(image["width"] == WIDTH and image["height"] == HEIGHT for image in coco.dataset["images"])
    (cats,) = [image["id"] for image in coco.dataset["images"] if image["file_name"].endswith("/cats/001.png")]
    boxes = coco.loadAnns(coco.getAnnIds(imgIds=[cats]))
    assert sorted(coco.cats[a["category_id"]]["name"] for a in boxes) == ["cat", "dog"]
    assert len(coco.dataset["annotations"]) == 3
