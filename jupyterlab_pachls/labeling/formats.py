"""Labels in training formats: the label files of one commit, through Label Studio's own converter.

No Label Studio runs: ``label_studio_sdk.converter`` reads tasks in Label Studio's JSON form, and
each label file gives one back (its data file as the task, its annotations as committed).

Every image (or text) path is the commit-pinned address of the data file the label was drawn on,
``images@<commit>:/cats/001.png``: Pachyderm's address syntax, which ``connect().open()``,
``%pachls ls``, ``pachctl get file`` and ``pfs.File.from_uri`` read. The commit comes from the
label file's ``data`` block (the provenance of the round that wrote it), so labels of several
rounds each point at the data version they were made on.

The labeling config is not committed with the labels (a session keeps it in its Label Studio
project), and the converter needs its tags and label names. They are rebuilt from the committed
annotations: one control per ``from_name`` with its type and the label values seen, on an Image
object when the results are image regions (they carry the image's size) or the data files are
images, else on a Text object.
Category ids (COCO, YOLO) follow ``classes`` when given, else the label names sorted; choices
classify the whole item and are no category (COCO, YOLO and VOC leave them out).

Label files are read a few at a time and written one by one to scratch files (memory does not grow
with them, but for one name pair per file). The converter reads the tasks one at a time and writes
CSV and JSON_MIN row by row, but builds its COCO document in memory (and ``_finish_coco`` reads it
whole again to name the images). COCO has one image per data file, and only images with a size (an
annotation without regions gives none).

COCO, CSV and JSON_MIN are one file; YOLO and VOC are a tree, sent as a zip whose label files
mirror the data paths (``labels/cats/001.txt`` for ``/cats/001.png``, where the converter would
flatten them by file name) with ``sources.json`` naming each one's data address.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr

from ..pfs.backend import Backend
from ..pfs.address import is_commit_id, parse_repo
from ..pfs.errors import Conflict, InvalidArgument, InvalidName
from .labelfile import SCHEMA, SUFFIX, authors, data_path
from .templates import CONTROL_TAGS, IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str  # of the file sent
    media_type: str
    needs: str  # what the labels must be, said when they are not


FORMATS = {f.name: f for f in (
    ExportFormat("COCO", ".json", "application/json", "rectangles, polygons or keypoints on images"),
    ExportFormat("YOLO", ".zip", "application/zip", "rectangles, polygons or keypoints on images"),
    ExportFormat("VOC", ".zip", "application/zip", "rectangles on images"),
    ExportFormat("CSV", ".csv", "text/csv", "any labels"),
    ExportFormat("JSON_MIN", ".json", "application/json", "any labels"),
)}
#: Formats whose converter output is a tree of files (sent as one zip).
TREES = ("YOLO", "VOC")
#: Formats of regions on images, with categories (or classes) of regions.
DETECTIONS = ("COCO", "YOLO", "VOC")
#: Result types that mark regions of an image (the others hang on text, audio, ... or the whole item).
IMAGE_REGIONS = {"rectanglelabels", "rectangle", "polygonlabels", "polygon", "keypointlabels", "keypoint",
                 "brushlabels", "brush", "ellipselabels", "ellipse"}
#: Controls that classify the whole item: no region, so no category of a detection format.
CLASSIFICATIONS = ("Choices", "Taxonomy")
#: Label Studio's result ``type`` -> the control tag that makes it (``rectanglelabels`` -> RectangleLabels).
CONTROL_BY_TYPE = {tag.lower(): tag for tag in CONTROL_TAGS}


class NotLabels(InvalidArgument):
    """The commit holds no label file: it is not a label commit (or the repo is not a labels repo)."""

    code = "not_labels"


class InvalidLabelFile(InvalidArgument):
    """A label file (schema ``pachls.label/1``) whose data block is not the one its place implies: a
    path elsewhere than the label file's own, a commit that is not an id, a repo that is not a name."""

    code = "invalid_label_file"


class FormatMismatch(InvalidArgument):
    """The labels are not of a kind the format can express (COCO of text classification)."""

    code = "format_mismatch"


def export_format(name: object) -> ExportFormat:
    """The format named (any case); InvalidArgument listing the formats otherwise."""
    found = FORMATS.get(name.upper()) if isinstance(name, str) else None
    if found is None:
        raise InvalidArgument(f"unknown export format {str(name)[:40]!r}; choose one of {', '.join(FORMATS)}",
                              format=str(name)[:40], formats=list(FORMATS))
    return found


def check_classes(classes: object) -> list[str] | None:
    """``classes`` without the spaces around each name (``cat, dog`` over REST), None when not given;
    InvalidArgument unless distinct non-empty names."""
    if classes is None:
        return None
    if not isinstance(classes, (list, tuple)) or not classes or \
            not all(isinstance(c, str) and c.strip() and len(c) <= 200 and "," not in c for c in classes):
        # no comma: over REST and in %pachls classes travel comma-separated
        raise InvalidArgument("classes must be a non-empty list of label names (without commas)", field="classes")
    classes = [name.strip() for name in classes]
    if len(set(classes)) != len(classes):
        raise InvalidArgument("classes must be distinct", field="classes", classes=list(classes))
    return list(classes)


def export_filename(repo: str, commit: str, fmt: ExportFormat) -> str:
    """``<repo>-<commit[:12]>-<format>.<suffix>`` (``labels-0123456789ab-coco.json``; a project's repo
    ``proj_labels-…``): what a download is called unless told otherwise."""
    return f"{repo.replace('/', '_')}-{commit[:12]}-{fmt.name.lower()}{fmt.suffix}"


@dataclass
class LabelExport:
    """A rendered export: ``path`` is the one file to send; ``close()`` removes it."""

    path: Path
    filename: str
    media_type: str
    _scratch: Any = field(repr=False, default=None)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The file's bytes, ``size`` at a time."""
        with open(self.path, "rb") as f:
            while chunk := f.read(size):
                yield chunk

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> "LabelExport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class _Item:
    label_path: str  # /cats/001.png.json
    data_path: str  # /cats/001.png
    address: str  # images@<commit>:/cats/001.png


def _label_item(repo: str, commit: str, path: str, content: bytes) -> tuple[_Item, list] | None:
    """The label file at ``path``: its item and annotations; None for any other file kept in the labels repo;
    :class:`InvalidLabelFile` for a label file whose data block is not what a label commit writes."""
    try:
        document = json.loads(content)
    except ValueError:
        return None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or document.get("schema") != SCHEMA:
        return None
    data_repo, data_commit, data_file = _data_address(data, f"{repo}@{commit}:{path}", path)
    annotations = [a for a in document.get("annotations") or [] if isinstance(a, dict)]
    return _Item(path, data_file, f"{data_repo}@{data_commit}:{data_file}"), annotations


def _data_address(data: dict, where: str, label_file: str) -> tuple[str, str, str]:
    """(repo, commit id, path) of the data file a label file names, or :class:`InvalidLabelFile`.
    They become archive entry names and addresses to train on: the path must be the label file's own
    place (never ``/../x``), the commit an id (never a branch, which moves)."""
    path = data_path(label_file)
    if data.get("path") != path:
        problem = f"data.path {str(data.get('path'))[:200]!r} is not {path!r}, the data file its place names"
    elif not isinstance(data.get("commit"), str) or not is_commit_id(data["commit"]):
        problem = f"data.commit {str(data.get('commit'))[:80]!r} is not a commit id"
    else:
        try:
            return str(parse_repo(data.get("repo"))), data["commit"], path
        except InvalidName as error:
            problem = f"data.repo is not a repo name: {error}"
    raise InvalidLabelFile(f"{where} is a label file whose {problem}; fix or remove it", path=label_file)


def _label_files(backend: Backend, repo: str, commit: str) -> Iterator[tuple[_Item, list]]:
    """Each label file of the commit (item, annotations), one after the other, in ONE pass over the commit
    (``Backend.read_tree``: a single ``GetFileTAR`` on a cluster, where a read per file took 13-18 s per
    1,000 files through ``jupyter pachls serve``). Only one file's bytes are held at a time."""
    for info, chunks in backend.read_tree(repo, commit, "/"):
        if chunks is None or not info.path.endswith(SUFFIX):
            continue  # a directory, or another file the labels repo keeps: skipped unread
        found = _label_item(repo, commit, info.path, b"".join(chunks))
        if found is not None:
            yield found


class LabelingConfig:
    """A Label Studio labeling config that fits the committed annotations (see the module's
    docstring), gathered one label file at a time."""

    def __init__(self) -> None:
        self.controls: dict[str, dict] = {}  # from_name -> {tag, to, labels}
        self.objects: dict[str, str] = {}  # to_name -> Image or Text

    def add(self, data_path: str, annotations: list) -> None:
        for annotation in annotations:
            for result in annotation.get("result") or []:
                if not isinstance(result, dict):
                    continue
                kind, source, target = result.get("type"), result.get("from_name"), result.get("to_name")
                if not all(isinstance(v, str) and re.fullmatch(r"[A-Za-z_][\w.-]*", v) for v in (kind, source, target)):
                    continue  # nothing a converter could name (relations, malformed results)
                control = self.controls.setdefault(source, {"tag": CONTROL_BY_TYPE.get(kind, kind), "to": target,
                                                            "labels": set()})
                if kind.endswith("labels") or kind == "choices":
                    found = (result.get("value") or {}).get(kind) or []
                    control["labels"].update(v for v in found if isinstance(v, str))
                if kind in IMAGE_REGIONS or "original_width" in result or \
                        data_path.lower().endswith(IMAGE_EXTENSIONS):  # choices carry no image size
                    self.objects[target] = "Image"
                self.objects.setdefault(target, "Text")

    def render(self, classes: list[str] | None = None, *, regions_only: bool = False) -> tuple[str, list[str]]:
        """The config, and the task data keys its objects read (``image``, ``text``). ``regions_only``
        leaves out choices: the converter would make their values COCO categories and YOLO classes."""
        controls, objects = self.controls, self.objects
        # categories are the labels of regions and spans (choices classify the whole item: no category)
        seen = sorted({label for c in controls.values() if c["tag"].endswith("Labels") for label in c["labels"]})
        if classes is not None:
            missing = [label for label in seen if label not in classes]
            if missing:
                raise InvalidArgument(f"the labels hold {', '.join(map(repr, missing[:10]))}, which classes "
                                      "does not list; add them to classes or leave classes out",
                                      missing=missing[:100], classes=classes)
        # the category of a label: the id COCO and YOLO give it, the same in every control
        category = {label: i for i, label in enumerate(classes if classes is not None else seen)}
        lines = ["<View>"]
        for name, kind in sorted(objects.items()):
            lines.append(f'  <{kind} name={quoteattr(name)} value="${kind.lower()}"/>')
        for name, control in sorted(controls.items()):
            tag = control["tag"]
            if tag in CLASSIFICATIONS and regions_only:
                continue
            if tag in CLASSIFICATIONS:
                children = "".join(f"<Choice value={quoteattr(v)}/>" for v in sorted(control["labels"]))
            else:  # with classes, every class (ids fixed whichever labels this commit happens to use)
                labels = category if classes is not None and tag.endswith("Labels") else sorted(control["labels"])
                children = "".join(f'<Label value={quoteattr(v)} category="{category[v]}"/>' for v in labels)
            lines.append(f"  <{tag} name={quoteattr(name)} toName={quoteattr(control['to'])}>{children}</{tag}>")
        lines.append("</View>")
        # no result at all (every annotation empty): the data file is still named, under "data"
        return "\n".join(lines), sorted({kind.lower() for kind in objects.values()}) or ["data"]


def _kinds(config: str) -> str:
    """What the labels are, in words: ``RectangleLabels on Image``."""
    from label_studio_sdk.converter.utils import parse_config

    schema = parse_config(config)
    said = sorted({f"{info['type']} on {', '.join(sorted({i['type'] for i in info['inputs']}))}"
                   for info in schema.values()})
    return "; ".join(said) or "no annotation results"


def _converter_annotations(annotations: list) -> list[dict]:
    """A label file's annotations as Label Studio's export gives them to the converter."""
    found = []
    for annotation in annotations:
        created_by, updated_by = authors(annotation)
        found.append({
            "id": annotation.get("id"), "completed_by": created_by, "updated_by": updated_by,
            # the converter sorts annotations by created_at: None < None is a TypeError, "" sorts first
            "result": annotation.get("result") or [], "created_at": annotation.get("created_at") or "",
            "updated_at": annotation.get("updated_at"), "lead_time": annotation.get("lead_time"),
            "was_cancelled": bool(annotation.get("was_cancelled")),
        })
    return found


def export_labels(backend: Backend, repo: str, ref: str, format: str, *,
                  classes: list[str] | None = None) -> LabelExport:
    """Render the label files of ``repo@ref`` as ``format`` (see :data:`FORMATS`) into one file.

    NotFound for an unknown repo or ref, :class:`NotLabels` when the commit holds no label file,
    :class:`FormatMismatch` when the labels are not of a kind the format expresses, InvalidArgument
    for an unknown format or classes that miss a label. The caller closes the result."""
    fmt = export_format(format)
    classes = check_classes(classes)
    commit = backend.inspect_commit(repo, ref)
    if commit.finished is None:
        raise Conflict(f"{repo}@{commit.id} is still open; export a finished commit", commit=commit.id)
    return _render(_label_files(backend, repo, commit.id), fmt, classes, where=f"{repo}@{commit.id}",
                   when=commit.finished, filename=export_filename(repo, commit.id, fmt))


def check_format_fits(config: str, format: str) -> str:
    """The canonical name of ``format`` when Label Studio's converter can write it for labels made with
    the labeling config ``config``; :class:`FormatMismatch` naming the formats that fit otherwise."""
    fmt = export_format(format)
    from label_studio_sdk.converter import Converter  # numpy, pandas, PIL: loaded on first use only

    with tempfile.TemporaryDirectory(prefix="pachls-export-") as uploads:
        supported = Converter(config, project_dir=None, upload_dir=uploads, download_resources=False).supported_formats
    if fmt.name not in supported:
        fits = [name for name in FORMATS if name in supported]
        raise FormatMismatch(f"{fmt.name} needs {fmt.needs}; this labeling config makes {_kinds(config)} "
                             f"(formats that fit: {', '.join(fits)})", format=fmt.name, fits=fits)
    return fmt.name


def render_export(files: Iterable[tuple[str, bytes]], repo: str, format: str, *, source: str,
                  classes: list[str] | None = None) -> dict[str, bytes]:
    """The label files ``files`` ((path, bytes) of ``repo``, other files skipped) rendered as ``format``,
    as the files to write: ``labels.json`` / ``labels.csv``, or the tree of YOLO and VOC (``classes.txt``,
    ``labels/cats/001.txt``, ...). ``source`` names the labels in the output (a label commit writing its
    own export has no id yet: ``labels@master``)."""
    fmt = export_format(format)
    found = ((path, _label_item(repo, source, path, raw)) for path, raw in files if path.endswith(SUFFIX))
    with _render((item for _path, item in found if item is not None), fmt, check_classes(classes), where=source,
                 when=datetime.now(timezone.utc), filename="labels" + fmt.suffix) as rendered:
        if fmt.name not in TREES:
            return {rendered.filename: rendered.path.read_bytes()}
        with zipfile.ZipFile(rendered.path) as tree:
            return {name: tree.read(name) for name in tree.namelist() if not name.endswith("/")}


def _render(label_files: Iterator[tuple[_Item, list]], fmt: ExportFormat, classes: list[str] | None, *,
            where: str, when: datetime, filename: str) -> LabelExport:
    scratch = tempfile.TemporaryDirectory(prefix="pachls-export-")
    try:
        root = Path(scratch.name)
        # One label file at a time: its annotations go to a scratch file, what the config needs is kept,
        # and of the item only its names (data path and address), so memory does not grow with the labels.
        facts, items = LabelingConfig(), []
        with open(root / "annotations.jsonl", "w", encoding="utf-8") as lines:
            for item, labels in label_files:
                facts.add(item.data_path, labels)
                lines.write(json.dumps(_converter_annotations(labels)) + "\n")
                items.append(item)
        if not items:
            raise NotLabels(f"{where} holds no label file (a <data path>.json written by a label commit): it is "
                            "not a label commit", labels=where)
        config, data_keys = facts.render(classes)

        from label_studio_sdk.converter import Converter  # numpy, pandas, PIL: loaded on first export only

        # the converter looks for uploads under upload_dir; an empty one keeps it off Label Studio's data dir
        (root / "uploads").mkdir()
        converter = Converter(config, project_dir=None, upload_dir=str(root / "uploads"), download_resources=False)
        if fmt.name not in converter.supported_formats:
            fits = [name for name in FORMATS if name in converter.supported_formats]
            raise FormatMismatch(f"{fmt.name} needs {fmt.needs}; the labels of {where} are "
                                 f"{_kinds(config)} (formats that fit: {', '.join(fits)})",
                                 format=fmt.name, fits=fits)
        if fmt.name in DETECTIONS:  # checked above with the choices: COCO of image classification is refused
            converter = Converter(facts.render(classes, regions_only=True)[0], project_dir=None,
                                  upload_dir=str(root / "uploads"), download_resources=False)
        tasks = root / "tasks.json"
        _write_tasks(tasks, root / "annotations.jsonl", items, data_keys,
                     root / "items" if fmt.name in DETECTIONS else None)
        converted = root / "converted"
        converter.convert(str(tasks), str(converted), fmt.name, is_dir=False)
        out = root / filename
        finish = {"COCO": _finish_coco, "YOLO": _finish_yolo, "VOC": _finish_voc}.get(fmt.name, _finish_file)
        finish(converted, out, items, label=where, when=when)
        return LabelExport(path=out, filename=out.name, media_type=fmt.media_type, _scratch=scratch)
    except BaseException:
        scratch.cleanup()
        raise


def _write_tasks(tasks: Path, annotations: Path, items: list[_Item], data_keys: list[str],
                 placeholders: Path | None) -> None:
    """The tasks JSON array the converter reads (with ijson, one task at a time), written one task at
    a time from the annotations file. With ``placeholders``, each task's data names an empty file there
    instead of the address: the converter keeps a path that exists as it is and rewrites any other into
    a cache name; ``items/<index>`` (never an image: sizes come from the annotations) maps back exactly."""
    if placeholders is not None:
        placeholders.mkdir()
    with open(annotations, encoding="utf-8") as lines, open(tasks, "w", encoding="utf-8") as out:
        out.write("[")
        for index, (item, line) in enumerate(zip(items, lines, strict=True)):
            value = item.address
            if placeholders is not None:
                (placeholders / str(index)).touch()
                value = str(placeholders / str(index))
            data = json.dumps({key: value for key in data_keys})
            out.write(f'{"," if index else ""}\n{{"id": {index}, "data": {data}, "annotations": {line.rstrip()}}}')
        out.write("\n]")


def _index(path: object) -> int:
    """The item index a placeholder path names (see ``export_labels``)."""
    return int(PurePosixPath(str(path)).name)


def _finish_file(converted: Path, out: Path, items: list[_Item], **_: Any) -> None:
    (produced,) = [p for p in converted.iterdir() if p.is_file()]
    produced.rename(out)


def _categories(categories: list[dict]) -> list[dict]:
    """Each category once, by id (the converter lists a label once per control that has it)."""
    return sorted({c["id"]: c for c in categories}.values(), key=lambda c: c["id"])


def _finish_coco(converted: Path, out: Path, items: list[_Item], *, label: str, when) -> None:
    document = json.loads((converted / "result.json").read_text())
    document["categories"] = _categories(document["categories"])
    # the converter gives each annotation its image: one per file (its annotations all on it), and only
    # with a size (an annotation without regions gives none: COCO readers need it, and no image is read)
    images: dict[str, dict] = {}
    image_of: dict[int, int] = {}
    for image in document["images"]:
        address = items[_index(image["file_name"])].address
        first = images.setdefault(address, dict(image, file_name=address))
        image_of[image["id"]] = first["id"]
        if first["width"] is None or first["height"] is None:
            first.update(width=image["width"], height=image["height"])
    for annotation in document["annotations"]:
        annotation["image_id"] = image_of[annotation["image_id"]]
    document["images"] = [image for image in images.values() if image["width"] is not None and image["height"] is not None]
    # what the labels are, and the same bytes for the same commit (the converter stamps the time now)
    document["info"].update(description=label, date_created=when.isoformat(), year=when.year)
    out.write_text(json.dumps(document))


def _mirrored(items: list[_Item], index: int, top: str, suffix: str, taken: dict[str, str]) -> str:
    """``labels/cats/001.txt`` for ``/cats/001.png``: the data path's place, refused when two collide."""
    data_file = items[index].data_path
    name = f"{top}{os.path.splitext(data_file)[0]}{suffix}"
    other = taken.setdefault(name, data_file)
    if other != data_file:
        raise FormatMismatch(f"{other} and {data_file} would share the label file {name} (the format names "
                             "label files by data file name without extension)", paths=[other, data_file])
    return name


def _zip_tree(out: Path, files: dict[str, Path], extra: dict[str, bytes], when) -> None:
    stamp = when.timetuple()[:6]  # the same bytes for the same commit
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, stamp), files[name].read_bytes(), zipfile.ZIP_DEFLATED)
        for name, raw in sorted(extra.items()):
            archive.writestr(zipfile.ZipInfo(name, stamp), raw, zipfile.ZIP_DEFLATED)


def _sources(files: dict[str, int], items: list[_Item], label: str) -> bytes:
    return json.dumps({"labels": label,
                       "files": {name: items[index].address for name, index in sorted(files.items())}},
                      indent=1).encode()


def _finish_yolo(converted: Path, out: Path, items: list[_Item], *, label: str, when) -> None:
    files, indices, taken = {}, {}, {}
    for produced in (converted / "labels").iterdir():
        index = _index(produced.stem)
        name = _mirrored(items, index, "labels", ".txt", taken)
        files[name], indices[name] = produced, index
    notes = json.loads((converted / "notes.json").read_text())
    notes["categories"] = _categories(notes["categories"])
    notes["info"].update(description=label, year=when.year)
    # line N of classes.txt is class N
    classes = "".join(f"{c['name']}\n" for c in notes["categories"]).encode()
    _zip_tree(out, files, {"classes.txt": classes, "notes.json": json.dumps(notes, indent=1).encode(),
                           "sources.json": _sources(indices, items, label)}, when)


def _finish_voc(converted: Path, out: Path, items: list[_Item], *, label: str, when) -> None:
    files, indices, taken = {}, {}, {}
    annotations = converted / "Annotations"
    for produced in (annotations.iterdir() if annotations.exists() else ()):
        index = _index(produced.stem)
        name = _mirrored(items, index, "Annotations", ".xml", taken)
        # the converter names the image by its (placeholder) file name: the data file's name, and its
        # address as <path> (a plain text edit: parsing a thousand documents again doubled the time)
        placeholder = f"<filename>{index}</filename>"
        text = produced.read_text(encoding="utf-8")
        if text.count(placeholder) != 1:  # a converter that writes VOC otherwise: say so, never mislabel
            raise RuntimeError(f"label_studio_sdk wrote VOC without one {placeholder} in {produced.name}")
        produced.write_text(text.replace(placeholder, f"<filename>{escape(PurePosixPath(items[index].data_path).name)}"
                                                      f"</filename>\n<path>{escape(items[index].address)}</path>"),
                            encoding="utf-8")
        files[name], indices[name] = produced, index
    _zip_tree(out, files, {"sources.json": _sources(indices, items, label)}, when)


__all__ = ["DETECTIONS", "FORMATS", "TREES", "ExportFormat", "FormatMismatch", "InvalidLabelFile", "LabelExport",
           "LabelingConfig", "NotLabels", "check_classes", "export_filename", "export_format", "export_labels",
           "render_export"]
