"""The :class:`Client` interface both clients share, the address forms it accepts and its
operations built on other operations (``ls``, ``read``, ``wait``, ``labels``, ``export_labels``)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from ..pfs import (
    AlreadyExists,
    Branch,
    BranchMove,
    Commit,
    FileChange,
    FileInfo,
    FilePage,
    InvalidArgument,
    InvalidPath,
    ParseError,
    Repo,
    Unavailable,
    parse_address,
)
from .model import Download, Mount, PendingChanges
from .tables import Table

DEFAULT_BRANCH = "master"

MOUNTS_NEED_SERVER = (
    "mounts need a running Jupyter server with jupyterlab-pachls (start JupyterLab, or connect(url=..., "
    "token=...)); this client opened the store directly"
)


def to_address(text: str, *, path: bool = False, default_ref: str | None = DEFAULT_BRANCH):
    """Parse ``repo[@ref][:/path]``; a missing ref is ``master``."""
    address = parse_address(text)
    if address.ref is None and default_ref is not None:
        address = dataclasses.replace(address, ref=default_ref)
    if not path and address.path is not None:
        raise ParseError(f"{text!r} must not name a path (expected repo@ref)", text=text, position=text.find(":"))
    return address


def to_branch_address(text: str):
    address = to_address(text)
    if address.is_commit or address.ancestors:
        raise InvalidArgument(f"{text!r} must name a branch (repo@branch), not a commit", address=text)
    return address


def to_file_address(text: str):
    """Parse ``repo@ref:/path`` naming a file (a path, not the root)."""
    address = to_address(text, path=True)
    if address.path in (None, "/"):
        raise InvalidArgument(f"{text!r} must name a file: repo@ref:/path", address=text)
    return address


def to_older_address(old: str, new):
    """Parse ``old``, the earlier side of a comparison with the parsed ``new``: the same repo."""
    address = to_address(old)
    if address.repo_key != new.repo_key:
        raise InvalidArgument(f"compare two commits of one repo, not {address.repo_key} and {new.repo_key}")
    return address


class Client:
    """Operations on versioned repos, mounts and labels. Made by :func:`connect`.

    Two implementations share this interface: :class:`ServerClient` (through a Jupyter
    server's REST API, sharing its mounts with the panel) and :class:`DirectClient`
    (the store opened in this process; no mounts).
    """

    #: "server" or "direct"
    mode = ""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release connections (a direct client closes its store)."""

    def describe(self) -> str:
        """One line: where this client goes."""
        raise NotImplementedError

    # repos and branches
    def repos(self) -> list[Repo]:
        """Every repo; ``Repo.branches`` holds the branch names."""
        raise NotImplementedError

    def repo(self, name: str) -> Repo:
        """One repo (NotFound if it does not exist)."""
        raise NotImplementedError

    def create_repo(self, name: str, description: str = "") -> Repo:
        """Create an empty repo (AlreadyExists if it exists)."""
        raise NotImplementedError

    def branches(self, repo: str) -> list[Branch]:
        """The branches of ``repo`` with their head commits, by name."""
        raise NotImplementedError

    # history and files
    def log(self, address: str, limit: int = 50) -> list[Commit]:
        """History of ``repo@branch`` (or from ``repo@<commit>`` / ``repo@branch^N``), newest first, at most ``limit``."""
        raise NotImplementedError

    def inspect_commit(self, address: str) -> Commit:
        """The commit ``repo@ref`` names (a branch head, ``branch^N`` or a commit id)."""
        raise NotImplementedError

    def _log_from_commit(self, address: str, limit: int) -> list[Commit]:
        """History from a commit (``repo@<id>`` or ``repo@branch^N``) back through its parents."""
        commit = self.inspect_commit(address)
        repo = to_address(address).repo_key
        out = [commit]
        while len(out) < limit and out[-1].parent:
            out.append(self.inspect_commit(f"{repo}@{out[-1].parent}"))
        return out

    def list_dir(self, address: str, limit: int = 400, after: str | None = None) -> FilePage:
        """One page of the directory ``repo@ref:/path``; pass ``page.next`` as ``after`` for the next."""
        raise NotImplementedError

    def ls(self, address: str, limit: int | None = 1000) -> list[FileInfo]:
        """The entries of the directory ``repo@ref:/path`` (paged underneath), at most ``limit``."""
        out: list[FileInfo] = []
        after = None
        while limit is None or len(out) < limit:
            page_size = 400 if limit is None else min(400, limit - len(out))
            page = self.list_dir(address, limit=page_size, after=after)
            out.extend(page.items)
            if not page.next:
                break
            after = page.next
        return out

    def open(self, address: str) -> BinaryIO:
        """A readable binary file object over ``repo@ref:/path`` (use it in ``with``)."""
        raise NotImplementedError

    def read(self, address: str) -> bytes:
        """The whole content of ``repo@ref:/path``."""
        with self.open(address) as f:
            return f.read()

    def get(self, address: str, local_dir: str | os.PathLike = ".") -> Download:
        """Copy ``repo@ref:/path`` (a directory, one file, or without a path the whole repo) into
        ``local_dir`` (made if missing), read in one pass at the commit ``ref`` names when it starts.

        What is below the path keeps its place under ``local_dir`` (``images@master:/cats`` gives
        ``local_dir/001.png``, ``local_dir/kittens/...``, as ``pachctl get file -r ... -o``); one file
        lands as ``local_dir/<its name>``. Each file is written beside and renamed into place, so none
        is ever half written; a file already there is replaced; a failure midway leaves the files
        written so far. Names that would leave ``local_dir`` are refused (InvalidPath).
        """
        source = to_address(address, path=True)
        repo, path = source.repo_key, source.path or "/"
        commit = self.inspect_commit(f"{repo}@{source.ref_text}")
        root = Path(local_dir)
        if root.exists() and not root.is_dir():
            raise InvalidArgument(f"cannot write into {local_dir}: it is not a directory", dest=str(local_dir))
        root.mkdir(parents=True, exist_ok=True)
        files = size = 0
        with closing(self._archive_members(repo, commit.id, path)) as members:
            for name, reader in _local_members(members):
                target = confined(root, name)
                try:
                    if reader is None:
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    size += _write_beside(target, reader)
                except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
                    raise AlreadyExists(f"cannot write {target}: {exc.filename} is in the way ({exc.strerror})",
                                        path=name) from None
                files += 1
        return Download(source=f"{repo}@{commit.id}:{path}", commit=commit.id, path=str(root), files=files,
                        bytes=size)

    def _archive_members(self, repo: str, commit: str, path: str) -> Iterator[tuple[str, BinaryIO | None]]:
        """The entries of the archive of ``repo@commit:path`` as ``pfs/archive.py`` names them, each with
        a reader of its bytes (None for a directory), to be read before the next is asked for."""
        raise NotImplementedError

    def diff(self, new: str, old: str | None = None, path: str = "/") -> list[FileChange]:
        """Files changed from ``old`` (default: the parent of ``new``) to ``new``; both ``repo@ref``."""
        raise NotImplementedError

    def rollback(self, address: str, commit: str, *, expected_head: str | None = None,
                 reason: str = "rollback") -> Branch:
        """Point ``repo@branch`` at ``commit`` (a commit id or ``branch^N``). Recorded; nothing is lost."""
        raise NotImplementedError

    def moves(self, address: str) -> list[BranchMove]:
        """Recorded head moves (rollbacks) of ``repo@branch``, newest first."""
        raise NotImplementedError

    # following a branch
    def subscribe(self, address: str, *, after: str | None = None, timeout: float | None = None,
                  stop: threading.Event | None = None) -> Iterator[Commit]:
        """Each commit that lands on ``repo@branch``, once, oldest first, as it lands (an iterator).

        Starts from the branch head at the time of the call, or after ``after`` (a commit id,
        ``repo@<id>`` or ``repo@branch^N``: commits that landed since are yielded at once). Ends when
        nothing landed for ``timeout`` seconds (None: never) or once ``stop`` (a ``threading.Event``)
        is set. A rollback is no new commit. ``for commit in pachls.subscribe("labels@master"):
        retrain(commit)`` runs once per label commit.
        """
        raise NotImplementedError

    def wait(self, address: str, *, after: str | None = None, timeout: float | None = None) -> Commit | None:
        """Block until a commit lands on ``repo@branch`` (after ``after``, else after the head now) and
        return it (the oldest, if several did); None when ``timeout`` seconds pass first."""
        commits = self.subscribe(address, after=after, timeout=timeout)
        try:
            return next(commits, None)
        finally:
            commits.close()

    def _after_id(self, branch_address, after: str | None) -> str | None:
        """The commit id ``after`` names in the followed repo (None stays None: from the head now)."""
        if after is None:
            return None
        if not isinstance(after, str) or not after:
            raise InvalidArgument("after must name a commit: an id, repo@<id> or repo@branch^N", after=repr(after))
        text = after if "@" in after else f"{branch_address.repo_key}@{after}"
        named = to_address(text)
        if named.repo_key != branch_address.repo_key:
            raise InvalidArgument(f"after names a commit of {named.repo_key}, not of {branch_address.repo_key}",
                                  after=after)
        if named.is_commit and not named.ancestors:
            return named.ref
        return self.inspect_commit(text).id

    # import
    def put(self, address: str, *paths: str | os.PathLike, message: str = "",
            progress: bool | None = None) -> Commit:
        """Import local files, directories (recursively) and globs into ONE commit on
        ``repo@branch[:/dest]`` (the branch is created if missing); returns that commit.

        Each source lands below ``dest`` (default ``/``) under its own name, as ``cp -r`` does:
        ``put("images@master:/raw", "data/cats", "notes.txt")`` gives ``/raw/cats/...`` and
        ``/raw/notes.txt``; ``"data/*"`` imports what ``data`` holds. Symlinked files are read,
        symlinked directories are not descended. Nothing is committed when anything fails (a missing
        source, a bad name, an interrupt). ``progress``: a progress bar (files, bytes, rate; ``tqdm``),
        by default only where output is a terminal or a notebook.
        """
        from ..pfs.imports import local_files

        target = to_address(address, path=True)
        if target.is_commit or target.ancestors:
            raise InvalidArgument(f"{address!r} must name a branch (repo@branch[:/dest]), not a commit",
                                  address=address)
        if not paths:
            raise InvalidArgument("name at least one file, directory or glob to put")
        sources = [os.fspath(p) for p in paths]
        dest = target.path or "/"
        total_files = total_bytes = 0
        for found in local_files(sources, dest):  # checked and counted before anything is sent
            total_files, total_bytes = total_files + 1, total_bytes + found.size
        if total_files == 0:
            raise InvalidArgument(f"nothing to put: {', '.join(sources)} hold no files")
        bar = ProgressBar(total_bytes, total_files, f"put {target.repo_key}@{target.ref}", progress)
        try:
            return self._put(target.repo_key, target.ref, local_files(sources, dest),
                             message or f"Import {total_files} files", bar.file_done)
        finally:
            bar.close()

    def _put(self, repo: str, branch: str, files: Iterable, message: str, on_file) -> Commit:
        raise NotImplementedError

    # mounts (server only)
    def mounts(self) -> list[Mount]:
        """Every mount, by name (the ones the panel shows)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def mount(self, address: str, *, rw: bool = False, name: str | None = None) -> Mount:
        """Mount ``repo@branch`` (or a commit) as a folder; ``rw=True`` stages writes for :meth:`commit`."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def mount_status(self, name: str) -> Mount:
        """The status of one mount (NotFound if ``name`` is not mounted)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def unmount(self, name: str, *, discard: bool = False) -> None:
        """Unmount; staged changes are dropped only with ``discard=True``."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def changes(self, name: str) -> PendingChanges:
        """The staged (written, not yet committed) changes of a read-write mount."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def commit(self, name: str, message: str, *, provenance: Iterable[str] = (),
               paths: Iterable[str] | None = None) -> Commit:
        """Land every staged change of mount ``name`` as ONE commit (with ``paths``: only those pending
        repo paths, the rest stays pending); ``provenance``: ``repo@ref`` strings."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def follow(self, name: str, *, keep: bool = True, overwrite: bool | Iterable[str] = False) -> Mount:
        """Move mount ``name`` to its branch's head wherever it went (a rollback too), keeping its staged
        changes on top (``keep``) or dropping them. Local files its ignore rules keep out of commits
        (never pending) where the branch changed their path: ``WouldOverwrite`` (a ``Conflict`` naming
        them in ``details["paths"]``; nothing changes) unless ``overwrite`` takes the branch's version:
        ``True``, or the paths agreed to (a refusal's ``details["paths"]``; any other file found in the
        way since is refused again)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def discard(self, name: str) -> Mount:
        """Drop every staged change of mount ``name``."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    def refresh(self, name: str, *, overwrite: bool | Iterable[str] = False) -> Mount:
        """Move mount ``name`` to its branch head (``WouldOverwrite`` and ``overwrite`` as in :meth:`follow`)."""
        raise Unavailable(MOUNTS_NEED_SERVER)

    # labels
    def blame(self, address: str) -> list:
        """Every commit that changed the label of ``repo@ref:/path`` (data or label path), newest first.

        Returns :class:`jupyterlab_pachls.labeling.history.BlameEntry` values.
        """
        raise NotImplementedError

    def label_diff(self, new: str, old: str | None = None) -> list:
        """Annotation-level changes between two label commits (``repo@ref``; ``old`` defaults to the parent).

        Returns :class:`jupyterlab_pachls.labeling.history.AnnotationChange` values.
        """
        raise NotImplementedError

    def labels(self, address: str, data: str | None = None, path: str = "/") -> Table:
        """One row per (data file, annotation) in the label files of ``repo@ref`` below ``path``.

        Row fields: data_path, data_repo, data_commit, label_path, label_repo, label_commit,
        annotation, annotator (who created it, also ``created_by``), updated_by (who last changed it),
        labels, created_at, updated_at, lead_time, was_cancelled, result.
        ``data="images"`` keeps labels made on that data repo; ``data="images@ref"`` keeps those
        made on the commit ``ref`` names or on one of its ancestors (labels of that version of the
        data or of an earlier one). ``.to_frame()`` gives a DataFrame.
        """
        target = to_address(address)
        data_repo, data_ref = None, None
        if data is not None:
            data_address = to_address(data, default_ref=None)
            data_repo, data_ref = data_address.repo_key, data_address.ref_text
        rows = self._label_rows(target.repo_key, target.ref_text, data_repo, path)
        if data_ref is not None:
            wanted = {r["data_commit"] for r in rows if r.get("data_commit")}
            keep = self._ancestors_among(data_repo, data_ref, wanted)
            rows = [r for r in rows if r.get("data_commit") in keep]
        return Table(rows, columns=LABEL_COLUMNS, title="labels")

    def _label_rows(self, repo: str, ref: str, data: str | None, path: str) -> list[dict]:
        raise NotImplementedError

    def export_labels(self, address: str, format: str, dest: str | os.PathLike | None = None, *,
                      classes: Iterable[str] | None = None) -> Path:
        """The label files of ``repo@ref`` as ``format`` (COCO, YOLO, VOC, CSV or JSON_MIN), rendered
        by Label Studio's converter (no Label Studio needed), written to ``dest``; returns its path.

        ``dest``: a file, or a directory to put ``<repo>-<commit[:12]>-<format>.<json|csv|zip>`` in
        (default: the current directory). YOLO and VOC are a zip. Image paths are the data files'
        commit-pinned addresses (``images@<commit>:/cats/001.png``, readable with :meth:`open`).
        ``classes``: label names in category order (COCO and YOLO ids 0, 1, ...), default the labels
        found, sorted. The ref is resolved once: a branch that moves meanwhile changes nothing.
        """
        from ..labeling.formats import check_classes, export_filename, export_format

        fmt = export_format(format)
        wanted = check_classes(list(classes)) if classes is not None else None
        repo = to_address(address).repo_key
        commit = self.inspect_commit(address)
        target = Path(dest) if dest is not None else Path.cwd()
        # Path() drops the trailing slash that says "into this directory"
        if str(dest).endswith(("/", os.sep)) and not target.is_dir():
            raise InvalidArgument(f"cannot write into {dest}: no such directory", dest=str(dest))
        if target.is_dir():
            target = target / export_filename(repo, commit.id, fmt)
        elif not target.parent.is_dir():
            raise InvalidArgument(f"cannot write {target}: {target.parent} is not a directory", dest=str(target))
        chunks = self._export_chunks(repo, commit.id, fmt.name, wanted)
        # written beside and renamed: a failed export leaves no half file under the name
        fd, partial = tempfile.mkstemp(prefix=_partial_prefix(target), suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            Path(partial).unlink(missing_ok=True)
        return target

    def _export_chunks(self, repo: str, commit: str, format: str, classes: list[str] | None) -> Iterator[bytes]:
        raise NotImplementedError

    def _ancestors_among(self, repo: str, ref: str, wanted: set[str]) -> set[str]:
        """Which of ``wanted`` are ``repo@ref``'s commit or its ancestors (walks parents, stops early)."""
        found: set[str] = set()
        commit = self.inspect_commit(f"{repo}@{ref}")
        seen = 0
        while commit is not None and found != wanted and seen < 100_000:
            seen += 1
            if commit.id in wanted:
                found.add(commit.id)
            if not commit.parent:
                break
            commit = self.inspect_commit(f"{repo}@{commit.parent}")
        return found

    def status(self) -> dict:
        """Where this client goes, the backend in use, and the mounts (server only)."""
        raise NotImplementedError


def _local_members(members: Iterator[tuple[str, BinaryIO | None]]) -> Iterator[tuple[str, BinaryIO | None]]:
    """The archive's entries named as they land in the target directory: what is below the top entry
    (the directory the archive is of), or the top entry's own name when the archive is of one file."""
    for name, reader in members:
        top, _, below = name.rstrip("/").partition("/")
        if reader is None and not below:
            continue  # the archive's top directory is the target directory itself
        yield (below or top), reader


def confined(root: Path, name: str) -> Path:
    """``root/name`` for a relative name that stays below ``root`` (no ``..``, no absolute path, no
    symlink in ``root`` leading out); InvalidPath otherwise."""
    parts = name.strip("/").split("/")
    if name.startswith("/") or not name.strip("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidPath(f"archive entry {name[:200]!r} would be written outside the target directory", path=name)
    target = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    if not os.path.realpath(target.parent).startswith(real_root.rstrip(os.sep) + os.sep) \
            and os.path.realpath(target.parent) != real_root:
        raise InvalidPath(f"{target} leads outside {root} (a symlink?)", path=name)
    return target


def _partial_prefix(target: Path) -> str:
    """``.<target's name>.``, the name cut to 200 bytes: the partial file's whole name (with mkstemp's
    random part and ``.part``) stays within the 255 bytes a file system allows."""
    return f".{os.fsdecode(os.fsencode(target.name)[:200])}."


def _write_beside(target: Path, chunks) -> int:
    """Write ``target`` through a temporary file beside it and rename it into place; return its size."""
    fd, partial = tempfile.mkstemp(prefix=_partial_prefix(target), suffix=".part", dir=target.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := chunks.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return size


class ProgressBar:
    """A ``tqdm`` bar over bytes with the file count beside it. ``enabled=None``: shown in a
    notebook's kernel and on a terminal, not in a log or a pipe."""

    def __init__(self, total_bytes: int, total_files: int, description: str, enabled: bool | None) -> None:
        import importlib.util
        import sys

        from tqdm.auto import tqdm

        if tqdm.__module__ == "tqdm.notebook" and importlib.util.find_spec("ipywidgets") is None:
            from tqdm.std import tqdm  # the notebook widget needs ipywidgets: the text bar instead
        if enabled is None:
            enabled = "ipykernel" in sys.modules or sys.stderr.isatty()
        self.total_files, self.files = total_files, 0
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
                        disable=not enabled, leave=True)
        self.bar.set_postfix_str(f"0/{total_files} files", refresh=False)

    def file_done(self, size: int) -> None:
        self.files += 1
        self.bar.set_postfix_str(f"{self.files}/{self.total_files} files", refresh=False)
        self.bar.update(size)

    def close(self) -> None:
        self.bar.close()


LABEL_COLUMNS = ("data_path", "data_repo", "data_commit", "label_path", "label_repo", "label_commit",
                 "annotation", "annotator", "created_by", "updated_by", "labels", "created_at", "updated_at",
                 "lead_time", "was_cancelled", "result")
