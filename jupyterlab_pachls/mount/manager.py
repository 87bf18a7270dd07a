"""The mount server: mounts of repos under one directory, their staging areas, and commits.

``MountManager`` is plain Python (no tornado): the REST layer only parses requests, calls it and
turns its dataclasses (``to_json()``) and typed errors (``pfs.errors``) into responses.

Files kept under ``state_dir``::

    lock                 held (flock) while a manager uses this state directory
    mounts.json          the mount table: name, repo, branch, commit, mode, base, presentation
    stage/<name>/        a read-write mount's staged changes (FUSE: upper/ + whiteouts.sqlite;
                         no-FUSE: index.json, the changes being the files in the mount itself)
    stage/<name>/commit.json   the commit in progress (see ``journal``); gone when none is
    cache/               file contents fetched from a backend without local blob files

The table and the stages are on disk, so a new manager on the same ``state_dir`` (after a restart
or a crash) brings every mount back with its pending changes. On start, FUSE mount points of ours
under ``mount_dir`` that no live process serves any more are unmounted (lazily).

A commit keeps a journal (``journal.CommitJournal``) that a new manager settles before showing the
mount. Once ``finish_commit`` returns, the commit has landed: if the stage cannot follow it right
then (the backend gone), the commit is still returned and the mount is in error until ``refresh``
(or the next start) moves the stage onto the landed commit.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Collection, Iterable

from cachetools import TTLCache

from ..atomic_write import write_json
from ..pfs.address import is_commit_id, normalize_path, parse_address
from ..pfs.backend import Backend
from ..pfs.errors import (AlreadyExists, Conflict, InvalidArgument, InvalidName, NotFound, PfsError, Unavailable,
                          WouldOverwrite)
from ..pfs.model import Commit, Provenance
from .ignore import overlay_rules, workspace_rules
from .journal import CommitJournal, branch_head
from .model import (BEHIND_LIMIT, COMMITTING, ERROR, FUSE, MOUNTED, MOUNTING, NO_FUSE, RO, RW, Change, Changes,
                    MountRecord, MountStatus)
from .overlay import Overlay, stage_into
from .plain import VIEWS, DirectoryWorkspace, LinkView
from .tree import CommitTree, ContentCache

log = logging.getLogger(__name__)
MOUNT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DEFAULT_BRANCH = "master"
CAS_RETRIES = 20
BEHIND_COUNTS = 4096  # (base, head) pairs whose distance is kept
BEHIND_COUNT_AGE = 60.0  # seconds a distance is kept: how long a squash may go unseen


@contextmanager
def disk_space(what: str, name: str):
    """A full disk (ENOSPC, EDQUOT) while doing ``what`` becomes a typed ``Unavailable`` (reason disk_full)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise Unavailable(f"no space left to {what} ({exc.strerror}); free some space and try again",
                              reason="disk_full", name=name) from exc
        raise


def in_use(roots: Iterable[str]) -> bool:
    """Whether a process has a file open, or its working directory, at or below one of ``roots`` (as
    ``fuser -m`` finds it, from /proc). ``roots`` must be real paths (no symlink on the way): /proc names
    files by theirs. Processes whose /proc entries this user cannot read (other users') and processes
    that end mid-scan do not count."""
    roots = {r.rstrip("/") for r in roots}
    below = tuple(r + "/" for r in roots)

    def inside(link: str) -> bool:
        return link in roots or link.startswith(below)

    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            if inside(os.readlink(f"/proc/{pid}/cwd")):
                return True
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if inside(os.readlink(f"/proc/{pid}/fd/{fd}")):
                    return True
            except OSError:
                continue
    return False


def validate_mount_name(name: object) -> str:
    if not isinstance(name, str) or not MOUNT_NAME_RE.match(name) or name in (VIEWS,) or ".." in name:
        raise InvalidName(
            f"mount name {name!r} is invalid: 1-128 letters, digits, '_', '-', '.', not starting with '.'",
            kind="mount", name=repr(name) if not isinstance(name, str) else name)
    return name


class _Mount:
    def __init__(self, record: MountRecord) -> None:
        self.record = record
        self.state = MOUNTING
        self.message = ""
        self.lock = threading.RLock()
        self.tree: CommitTree | None = None
        self.fuse = None  # FuseMount
        self.overlay = None  # Overlay (FUSE rw)
        self.workspace: DirectoryWorkspace | None = None  # no-FUSE rw
        self.view: LinkView | None = None  # no-FUSE ro
        self.follow: dict | None = None  # the journal of a commit that landed before the stage followed it
        # what status last found, shown while a long operation (commit, refresh, ...) holds the mount
        self.behind = 0
        self.pending = 0
        self.head: str | None = None  # the branch's head as status last saw it

    @property
    def stage(self):
        return self.overlay if self.overlay is not None else self.workspace


class MountManager:
    """Mounts ``repo@branch`` / ``repo@commit`` under ``mount_dir``; ``fuse`` None = FUSE when possible."""

    def __init__(self, backend: Backend, mount_dir: str | os.PathLike, state_dir: str | os.PathLike, *,
                 fuse: bool | None = None) -> None:
        from . import fusefs

        self._fusefs = fusefs
        self.backend = backend
        self.mount_dir = Path(mount_dir).expanduser().absolute()
        self.state_dir = Path(state_dir).expanduser().absolute()
        self.mount_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "stage").mkdir(exist_ok=True)
        self._lock_file = open(self.state_dir / "lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise Unavailable(f"another mount server is using {self.state_dir}", state_dir=str(self.state_dir))
        available, why = fusefs.fuse_available()
        if fuse is True and not available:
            self._lock_file.close()
            raise Unavailable(f"FUSE is not available: {why}", reason=why)
        self.use_fuse = available if fuse is None else bool(fuse)
        self._fuse_auto = fuse is None
        self.fuse_reason = "" if self.use_fuse else (why or "disabled")
        self.cache = ContentCache(self.state_dir / "cache")
        self._lock = threading.RLock()
        self._table_lock = threading.Lock()
        # commits between a base and a head: kept a while only, since a squash re-parents commits
        # (the same pair then has another distance)
        self._behind_counts: TTLCache = TTLCache(maxsize=BEHIND_COUNTS, ttl=BEHIND_COUNT_AGE)
        self._behind_lock = threading.Lock()
        self._mounts: dict[str, _Mount] = {}
        self._closed = False
        self.cleaned_stale = self.clean_stale()
        for record in self._load():
            mount = _Mount(record)
            self._mounts[record.name] = mount
            try:
                self._present(mount)
            except Exception as exc:  # keep the record (and its stage); report the error
                log.exception("could not bring back mount %s", record.name)
                mount.state, mount.message = ERROR, str(getattr(exc, "message", exc))

    # -- the persistent table ------------------------------------------------------------
    @property
    def _table(self) -> Path:
        return self.state_dir / "mounts.json"

    def _load(self) -> list[MountRecord]:
        try:
            rows = json.loads(self._table.read_text())
        except FileNotFoundError:
            return []
        return [MountRecord(**row) for row in rows]

    def _save(self) -> None:
        # One save at a time, snapshot included: concurrent saves could replace a newer table
        # with an older one.
        with self._table_lock:
            with self._lock:
                rows = [asdict(m.record) for m in self._mounts.values()]
            write_json(self._table, rows)

    # -- stale mounts ------------------------------------------------------------------------
    def clean_stale(self) -> list[str]:
        """Unmount our FUSE mount points under ``mount_dir`` that no live process serves any more."""
        cleaned = []
        prefix = str(self.mount_dir) + "/"
        for point, source in self._fusefs.fuse_mounts():
            if not point.startswith(prefix) or not source.startswith(self._fusefs.FSNAME_PREFIX):
                continue
            try:
                os.stat(point)
                continue  # served by a live process
            except OSError as exc:
                if exc.errno not in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO):
                    continue
            if self._fusefs.unmount(point, lazy=True):
                cleaned.append(point)
                log.warning("cleaned stale FUSE mount %s", point)
        return cleaned

    # -- mounting ------------------------------------------------------------------------------
    def mount(self, repo: str, branch: str | None = None, *, commit: str | None = None, mode: str = RO,
              name: str | None = None) -> MountStatus:
        """Mount ``repo`` (or an address ``repo@branch`` / ``repo@<commit>``) and return its status.

        Read-only mounts may show a branch head or a fixed commit; read-write mounts need a branch
        (a commit may be given as the base: it must be on that branch's history, and commits land on
        the branch). Name: explicit, else ``<repo>`` for master, else ``<repo>_<branch>`` (or
        ``<repo>_<commit[:8]>``). AlreadyExists when the name is taken.
        """
        if self._closed:
            raise Unavailable("the mount manager is closed")
        if mode not in (RO, RW):
            raise InvalidArgument(f"mode must be 'ro' or 'rw', not {mode!r}", mode=mode)
        address = parse_address(repo)
        if address.path not in (None, "/"):
            raise InvalidArgument("mount a whole repo; paths inside it are not supported", path=address.path)
        if address.ancestors:
            raise InvalidArgument("mount a branch or a commit id, not branch^N", ref=address.ref_text)
        repo_key = address.repo_key
        if address.ref is not None:
            if is_commit_id(address.ref):
                commit = commit or address.ref
            else:
                branch = branch or address.ref
        if branch is not None:
            parse_address(f"{repo_key}@{branch}")  # validates the branch name
        if commit is not None and not is_commit_id(commit):
            raise InvalidArgument(f"{commit!r} is not a commit id", commit=commit)
        self.backend.inspect_repo(repo_key)
        if commit is not None:
            found = self.backend.inspect_commit(repo_key, commit)
            if found.is_open:
                raise Conflict(f"commit {commit} is still open", commit=commit)
            if mode == RW and branch is None:
                branch = found.branch
                if branch is None:
                    raise InvalidArgument("a read-write mount needs a branch to commit to", commit=commit)
            base = commit
        else:
            branch = branch or DEFAULT_BRANCH
            try:
                head = self.backend.inspect_branch(repo_key, branch).head
            except NotFound:
                if mode == RO:
                    raise
                head = None  # a read-write mount of a new branch: the first commit creates it
            base = head.id if head else None
        if name is None:
            short = repo_key.replace("/", "_")
            if commit is not None and mode == RO:
                name = f"{short}_{commit[:8]}"
            else:
                name = short if branch == DEFAULT_BRANCH else f"{short}_{branch}"
        name = validate_mount_name(name)
        record = MountRecord(name=name, repo=repo_key, branch=branch, commit=commit if mode == RO else None,
                             mode=mode, base=base, presentation=FUSE if self.use_fuse else NO_FUSE)
        with self._lock:
            if name in self._mounts:
                raise AlreadyExists(f"a mount named {name!r} exists", name=name)
            target = self.mount_dir / name
            if os.path.lexists(target) and not self._reusable(target):
                raise AlreadyExists(f"{target} exists and is not an empty directory", name=name, path=str(target))
            if (self.state_dir / "stage" / name).exists():
                shutil.rmtree(self.state_dir / "stage" / name)  # left by an unmounted mount
            mount = _Mount(record)
            mount.lock.acquire()  # before anyone can find it: status shows it mounting meanwhile
            self._mounts[name] = mount
        try:
            with disk_space(f"mount {name}", name):
                self._present(mount)
        except BaseException:
            with self._lock:
                self._mounts.pop(name, None)
            self._teardown(mount, remove=True)
            if self._reusable(target):
                target.rmdir()  # the empty mount point made for it
            raise
        finally:
            mount.lock.release()
        self._save()
        return self.status(name)

    @staticmethod
    def _reusable(target: Path) -> bool:
        return target.is_dir() and not target.is_symlink() and not any(target.iterdir())

    def _tree(self, record: MountRecord, base: str | None) -> CommitTree:
        return CommitTree(self.backend, record.repo, base, self.cache)

    def _journal(self, record: MountRecord) -> CommitJournal:
        return CommitJournal(self.backend, self.cache, record, self.state_dir / "stage" / record.name)

    def _present(self, mount: _Mount) -> None:
        """Make the mount visible under ``mount_dir`` (FUSE, or the no-FUSE views)."""
        record = mount.record
        mount.state = MOUNTING
        mount.tree = self._tree(record, record.base)
        target = self.mount_dir / record.name
        stage_dir = self.state_dir / "stage" / record.name
        if record.presentation == FUSE and not self.use_fuse:
            record.presentation = NO_FUSE  # a FUSE stage is carried over below
        journal = self._journal(record)
        if record.mode == RW and journal.exists():
            tree = journal.settle(target)
            if tree is not None:
                mount.tree = tree
                self._save()
            journal.drop()
        mount.follow = None
        if record.presentation == FUSE:
            if target.is_symlink():
                target.unlink()
            target.mkdir(exist_ok=True)
            if record.mode == RO:
                ops = self._fusefs.ReadOnlyOps(mount.tree)
            else:
                mount.overlay = Overlay(stage_dir, mount.tree)
                mount.overlay.ignore = overlay_rules(mount.overlay)
                ops = self._fusefs.ReadWriteOps(mount.overlay)
            mount.fuse = self._fusefs.FuseMount(ops, str(target), readonly=record.mode == RO, label=record.name)
            try:
                mount.fuse.start()
            except OSError as exc:
                mount.fuse = None
                if mount.overlay is not None:
                    mount.overlay.close()
                    mount.overlay = None
                if not self._fuse_auto:
                    raise Unavailable(f"FUSE mount of {record.name} failed: {exc}", name=record.name) from exc
                log.warning("FUSE mount of %s failed (%s); presenting it without FUSE", record.name, exc)
                record.presentation = NO_FUSE
                self._present(mount)
                mount.message = f"FUSE mount failed ({exc}); shown without FUSE"
                return
        elif record.mode == RO:
            mount.view = LinkView(self.mount_dir, record.name)
            mount.view.show(mount.tree, keep_untouched=True)  # a restart keeps the view it finds intact
        else:
            mount.workspace = DirectoryWorkspace(target, stage_dir, mount.tree)
            mount.workspace.ignore = workspace_rules(target)
            if (stage_dir / "upper").is_dir():
                self._carry_over_fuse_stage(mount, stage_dir, target)
            else:
                mount.workspace.open()
        mount.state, mount.message = MOUNTED, ""

    def _carry_over_fuse_stage(self, mount: _Mount, stage_dir: Path, target: Path) -> None:
        """A read-write mount staged under FUSE, now shown without it: build the directory from the
        base commit, then apply the staged files and deletions to it. Nothing staged is lost."""
        overlay = Overlay(stage_dir, mount.tree)
        try:
            staged = overlay.changes()
            empty_dirs = [d for d, subdirs, files in os.walk(overlay.upper) if not subdirs and not files]
            mount.workspace.open()
            for change in staged:
                local = str(target) + change.path
                if change.change == "deleted":
                    if os.path.lexists(local):
                        os.unlink(local)
                    continue
                os.makedirs(os.path.dirname(local), exist_ok=True)
                shutil.copyfile(change.source, local)
            for directory in empty_dirs:
                os.makedirs(str(target) + directory[len(str(overlay.upper)):], exist_ok=True)
        finally:
            overlay.close()
        shutil.rmtree(overlay.upper)
        for leftover in stage_dir.glob("whiteouts.sqlite*"):
            leftover.unlink()

    def _teardown(self, mount: _Mount, *, remove: bool) -> None:
        """Stop presenting a mount; with ``remove`` also delete its view/stage."""
        target = self.mount_dir / mount.record.name
        if mount.fuse is not None:
            mount.fuse.stop()
            mount.fuse = None
            try:
                if target.is_dir() and not target.is_symlink() and not self._fusefs.is_mountpoint(str(target)):
                    target.rmdir()
            except OSError:
                pass
        if mount.overlay is not None:
            mount.overlay.close()
            if remove:
                shutil.rmtree(self.state_dir / "stage" / mount.record.name, ignore_errors=True)
            mount.overlay = None
        if mount.view is not None and remove:
            mount.view.remove()
        if mount.workspace is not None:
            if remove:
                mount.workspace.remove()
            else:
                mount.workspace.close()

    def unmount(self, name: str, *, discard: bool = False) -> None:
        """Unmount and forget a mount. Refused (Conflict) while it has pending changes, unless ``discard``."""
        mount = self._get(name)
        self._try_follow(mount)
        with mount.lock:
            if mount.record.mode == RW and mount.stage is not None and not discard:
                pending = self._changes(mount)
                if pending:
                    raise Conflict(f"mount {name} has {len(pending)} pending changes; commit or discard them first",
                                   name=name, pending=len(pending))
            with self._lock:
                self._mounts.pop(name, None)
            self._teardown(mount, remove=True)
            self._save()

    def close(self) -> None:
        """Unmount everything cleanly; the mount table and every stage stay for the next manager."""
        if self._closed:
            return
        self._closed = True
        for mount in list(self._mounts.values()):
            with mount.lock:
                try:
                    self._teardown(mount, remove=False)
                except Exception:
                    log.exception("error while unmounting %s", mount.record.name)
        self._mounts.clear()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._lock_file.close()

    def __enter__(self) -> "MountManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- status --------------------------------------------------------------------------
    def _get(self, name: str) -> _Mount:
        if not isinstance(name, str):
            raise InvalidName("mount name must be a string", kind="mount")
        with self._lock:
            mount = self._mounts.get(name)
        if mount is None:
            raise NotFound(f"no mount named {name!r}", name=name)
        return mount

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._mounts)

    def list(self) -> list[MountStatus]:
        return [self.status(name) for name in self.names()]

    def status(self, name: str) -> MountStatus:
        """The mount's state, how far its branch moved on (``behind``) and its staged changes
        (``pending``). Never waits for a long operation on the mount (a commit, refresh, discard or
        staging holds its lock): meanwhile it answers with what it last found, without asking the
        stage or the backend (which the operation may be waiting for)."""
        mount = self._get(name)
        record = mount.record
        message = mount.message
        if mount.fuse is not None and not mount.fuse.alive and mount.state != ERROR:
            mount.state = ERROR
            mount.message = f"the FUSE mount ended ({mount.fuse.error or 'unmounted from outside'}); refresh remounts it"
            message = mount.message
        if mount.state != ERROR and mount.lock.acquire(blocking=False):
            try:
                if record.mode == RW and mount.stage is not None:
                    mount.pending = mount.stage.pending_count()
            except PfsError as exc:
                message = exc.message
            finally:
                mount.lock.release()
            try:  # outside the lock: a commit starting now must not wait for the backend's answer
                if record.commit is None and record.branch:
                    base = record.base  # a commit or refresh may move it meanwhile
                    behind, head = self._behind(record, base)
                    if record.base == base:
                        mount.behind, mount.head = behind, head
            except PfsError as exc:
                message = exc.message
        error = mount.state == ERROR
        # a refresh holding the lock may have moved the base to the head already: not behind it then
        behind = 0 if error or record.base == mount.head else mount.behind
        return MountStatus(
            name=record.name, repo=record.repo, branch=record.branch, commit=record.commit, base=record.base,
            mode=record.mode, presentation=record.presentation, state=mount.state, message=message,
            behind=behind, pending=0 if error else mount.pending,
            mountpoint=str(self.mount_dir / record.name), head=None if record.commit else mount.head)

    def _behind(self, record: MountRecord, base: str | None) -> tuple[int, str | None]:
        """Commits on the branch since ``base``, and the branch's head: one branch lookup, and the
        history read only for a (base, head) pair not counted before."""
        head = branch_head(self.backend, record)
        if head is None or head == base:
            return 0, head
        key = (record.repo, base, head)
        with self._behind_lock:
            known = self._behind_counts.get(key)
        if known is None:
            known = self._count_behind(record.repo, base, head)
            with self._behind_lock:
                self._behind_counts[key] = known
        return known, head

    def _count_behind(self, repo: str, base: str | None, head: str) -> int:
        count, before = 0, None
        while count < BEHIND_LIMIT:
            page = self.backend.list_commits(repo, head, limit=100, before=before)
            for commit in page:
                if commit.id == base:
                    return count
                count += 1
            if len(page) < 100:
                # the whole history: a mount made before the branch had commits is behind all of it;
                # otherwise the base is not in the branch's history (the branch was rolled back)
                return count if base is None else -1
            before = page[-1].id
        return count  # at least this many

    # -- changes -------------------------------------------------------------------------------
    def _changes(self, mount: _Mount) -> list[Change]:
        return mount.stage.changes()

    def changes(self, name: str) -> Changes:
        """Files added, modified and deleted in a read-write mount, against its base commit."""
        mount = self._get(name)
        if mount.record.mode != RW:
            return Changes(name=name, base=mount.record.base, changes=())
        self._try_follow(mount)
        self._require_up(mount)
        with mount.lock:
            found = self._changes(mount)
            unsupported = tuple(getattr(mount.stage, "unsupported", ()) or ())
            return Changes(name=name, base=mount.record.base, changes=tuple(found), unsupported=unsupported)

    def _try_follow(self, mount: _Mount) -> None:
        """A mount whose commit landed but whose stage did not follow it yet: try to catch up now (the
        backend may be back); if it still cannot, the mount stays in error and says why."""
        if mount.follow is None:
            return
        with mount.lock:
            if mount.follow is None or mount.state != ERROR or mount.stage is None \
                    or (mount.fuse is not None and not mount.fuse.alive):
                return
            try:
                self._repair_follow(mount)
            except Exception:
                log.warning("mount %s still cannot follow its commit %s", mount.record.name,
                            mount.follow.get("landed"), exc_info=True)

    @staticmethod
    def _require_up(mount: _Mount) -> None:
        if mount.state == ERROR or mount.stage is None and mount.record.mode == RW:
            raise Unavailable(f"mount {mount.record.name} is in error: {mount.message}", name=mount.record.name)

    def _their_changes(self, record: MountRecord, head: str | None) -> list:
        """What the commits between the mount's base and ``head`` changed (one diff, asked once per
        move and shared by its checks and the move itself)."""
        if head == record.base or head is None:
            return []
        return self.backend.diff(record.repo, record.base, head)

    @staticmethod
    def _conflicts(record: MountRecord, head: str | None, paths: set[str], theirs: list) -> None:
        """Raise Conflict if ``theirs`` (the changes between the base and ``head``) touch any of ``paths``."""
        clash = sorted(paths & {c.path for c in theirs})
        if clash:
            raise Conflict(
                f"{record.repo}@{record.branch} moved since this mount's base commit and the new commits "
                f"changed {len(clash)} of the staged paths; nothing was committed and the stage is kept",
                paths=clash, base=record.base, head=head, name=record.name)

    @staticmethod
    def _ignored_in_the_way(ignored: list[Change], theirs: list) -> list[str]:
        """Local files the ignore rules leave out (so never committed) at paths that ``theirs`` (the
        changes between the base and the head) changed: moving the stage onto the head would replace
        them (no FUSE) or keep them hiding the branch's version (FUSE)."""
        local = {c.path for c in ignored if c.change != "deleted"}
        return sorted(local & {c.path for c in theirs})

    @staticmethod
    def _refuse_overwrite(record: MountRecord, head: str | None, in_the_way: list[str],
                          overwrite: bool | Collection[str] = False) -> None:
        """WouldOverwrite naming every path of ``in_the_way`` unless ``overwrite`` allows them all: True
        (whatever they are) or the paths a user was shown and agreed to (the branch may have moved since,
        in the way of another file)."""
        allowed = overwrite is True or (overwrite is not False and set(in_the_way) <= set(overwrite))
        if in_the_way and not allowed:
            shown = ", ".join(in_the_way[:5]) + (f" and {len(in_the_way) - 5} more" if len(in_the_way) > 5 else "")
            raise WouldOverwrite(
                f"{record.repo}@{record.branch} changed {len(in_the_way)} path(s) where mount {record.name} holds "
                f"local files its ignore rules keep out of every commit ({shown}); nothing was changed. Move the "
                "mount to the branch head with overwrite to take the branch's version, or move the files away first",
                paths=in_the_way[:100], count=len(in_the_way), name=record.name, base=record.base, head=head)

    # -- commit / discard / refresh ----------------------------------------------------------------
    def commit(self, name: str, message: str = "", author: str = "", *, provenance: Iterable[Provenance] = (),
               metadata: dict[str, str] | None = None, paths: Iterable[str] | None = None) -> Commit:
        """Land the staged changes of a read-write mount as ONE commit on its branch; return it. With
        ``paths``, only the changes at those repo paths (each must be pending); the rest stays pending."""
        chosen = None if paths is None else self._chosen_paths(paths)
        mount = self._get(name)
        record = mount.record
        if record.mode != RW:
            raise InvalidArgument(f"mount {name} is read-only; there is nothing to commit", name=name)
        self._try_follow(mount)
        self._require_up(mount)
        with mount.lock, mount.stage.lock:
            mount.state = COMMITTING
            try:
                with disk_space(f"commit mount {name} (nothing was committed; the stage is kept)", name):
                    landed = self._commit(mount, message, author, tuple(provenance), metadata, chosen)
            finally:
                if mount.state == COMMITTING:  # ERROR: landed, and the mount waits for a refresh
                    mount.state = MOUNTED
        return landed

    @staticmethod
    def _chosen_paths(paths: Iterable[str]) -> set[str]:
        if isinstance(paths, (str, bytes)) or not isinstance(paths, Iterable):
            raise InvalidArgument("paths must be a list of repo paths", field="paths")
        chosen = {normalize_path(p, allow_root=False) for p in paths}
        if not chosen:
            raise InvalidArgument("no path chosen: choose at least one pending change to commit", field="paths")
        return chosen

    def _commit(self, mount: _Mount, message, author, provenance, metadata, chosen: set[str] | None) -> Commit:
        record = mount.record
        stage = mount.stage
        changes, ignored = stage.changes_and_ignored()
        # every pending path, chosen or not: the stage moves onto the new head after the commit, so an
        # unticked file the branch changed meanwhile is a conflict too (else theirs would overwrite it)
        paths = {c.path for c in changes}
        unsupported = list(getattr(stage, "unsupported", ()) or ())
        if chosen is not None:
            missing = sorted(chosen - {c.path for c in changes})
            if missing:
                raise InvalidArgument(f"{len(missing)} of the chosen paths are not pending in mount {record.name} "
                                      "(committed, discarded or ignored meanwhile?); nothing was committed",
                                      paths=missing[:100], name=record.name)
            changes = [c for c in changes if c.path in chosen]
            unsupported = []  # odd entries are never among the changes, so never among the chosen ones
        if unsupported:
            raise InvalidArgument(
                f"{len(unsupported)} entries in mount {record.name} are symlinks, special files or badly named; "
                "mounts only commit regular files: remove or replace them", paths=unsupported[:100])
        if not changes:
            raise InvalidArgument(f"nothing to commit in mount {record.name}", name=record.name)
        head = branch_head(self.backend, record)
        theirs = self._their_changes(record, head)
        self._conflicts(record, head, paths, theirs)
        # the stage moves onto the landed commit, which brings in what landed meanwhile
        self._refuse_overwrite(record, head, self._ignored_in_the_way(ignored, theirs))
        journal = self._journal(record)
        note = {"base": record.base, "message": message, "author": author, "time": time.time()}
        journal.write(note)
        try:
            opened = self.backend.start_commit(record.repo, record.branch, message=message, author=author,
                                               provenance=provenance, metadata=metadata)
        except BaseException:
            journal.drop()
            raise
        note.update(commit=opened.id, started=opened.started.isoformat() if opened.started else None)
        try:
            journal.write(note)
            puts = [(c.path, c.source) for c in changes if c.change != "deleted"]
            if puts:
                self.backend.put_files(opened, puts)
            for c in changes:
                if c.change == "deleted":
                    self.backend.delete_file(opened, c.path)
            for _ in range(CAS_RETRIES):
                try:
                    landed = self.backend.finish_commit(opened, expected_parent=head)
                    break
                except Conflict:
                    newer = branch_head(self.backend, record)
                    if newer == head:
                        raise
                    theirs = self._their_changes(record, newer)
                    self._conflicts(record, newer, paths, theirs)
                    self._refuse_overwrite(record, newer, self._ignored_in_the_way(ignored, theirs))
                    head = newer
            else:
                raise Conflict(f"{record.repo}@{record.branch} kept moving; gave up after {CAS_RETRIES} tries")
        except BaseException as failure:
            # The backend unreachable mid-finish may have landed the commit all the same (a lost reply).
            landed = journal.landed_anyway(note) if isinstance(failure, Unavailable) else None
            if landed is None:
                try:
                    self.backend.abort_commit(opened)
                except PfsError:
                    pass
                else:
                    journal.drop()
                raise
            log.warning("mount %s: commit %s landed although the call reported: %s", record.name, landed.id,
                        getattr(failure, "message", failure))
            head = landed.parent
        # Landed: from here on nothing may report the commit as failed. The mount's base is the landed
        # commit at once (in the table too); the journal, now naming the landed commit and the base the
        # stage was made against, stays until the stage follows it.
        old_base = record.base
        note.update(landed=landed.id, parent=landed.parent)
        try:
            journal.write(note)
        except OSError:  # the journal still names the opened commit: the next start finds it landed
            log.exception("mount %s: commit %s landed but its journal could not be updated", record.name, landed.id)
        record.base = landed.id
        try:
            self._save()
        except OSError:  # landed all the same; the journal settles the table at the next start
            log.exception("mount %s: commit %s landed but the mount table could not be saved", record.name, landed.id)
        try:
            tree = self._tree(record, landed.id)
            if mount.workspace is not None:
                mount.workspace.after_commit(tree, changes)
                if head != old_base and head is not None:  # landed on top of other commits: bring them in
                    theirs = self.backend.diff(record.repo, old_base, head)
                    mount.workspace.apply(tree, theirs)
            else:
                mount.overlay.after_commit(tree, changes)
            mount.tree = tree
        except Exception as exc:
            # e.g. the backend unreachable right after the commit landed: the stage still holds what
            # landed, against the old base. Say so; refresh (or the next start, from the journal)
            # moves the stage onto the landed commit.
            log.exception("mount %s: commit %s landed, but the mount could not follow it", record.name, landed.id)
            mount.follow = dict(note)
            mount.state = ERROR
            mount.message = (f"commit {landed.id} landed, but the mount could not catch up with it "
                             f"({getattr(exc, 'message', exc)}); refresh the mount to show it")
            return landed
        try:
            journal.drop()
        except OSError:
            log.exception("mount %s: the journal of commit %s could not be removed", record.name, landed.id)
        return landed

    def _repair_follow(self, mount: _Mount) -> None:
        """Finish what a commit that landed could not: the live stage follows the landed commit."""
        record, note = mount.record, mount.follow
        journal = self._journal(record)
        with mount.stage.lock:
            mount.tree = journal.catch_up(mount.stage, note)
        mount.follow = None
        mount.state, mount.message = MOUNTED, ""
        journal.drop()
        log.info("mount %s now follows its commit %s", record.name, note["landed"])

    def stage_files(self, name: str, files: dict[str, bytes | None]) -> int:
        """Write (bytes) or delete (None) many files of a read-write mount in one call, straight into its
        stage (not through the kernel): FUSE, into the overlay (readers of the mount see the new bytes
        at once: the kernel keeps no attributes, entries or pages of a read-write mount); no-FUSE, into
        the mount's directory, where no symlink on the way is followed. Paths are repo paths, checked
        like any (``normalize_path``); each file is replaced with one rename (never seen half-written);
        on any failure nothing is staged. Deleting a missing file is no change. Returns how many paths."""
        mount = self._get(name)
        if mount.record.mode != RW:
            raise InvalidArgument(f"mount {name} is read-only; files cannot be staged in it", name=name)
        if not isinstance(files, dict):
            raise InvalidArgument("files must map paths to bytes (or None to delete)")
        checked: dict[str, bytes | None] = {}
        for path, data in files.items():
            repo_path = normalize_path(path, allow_root=False)
            if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
                raise InvalidArgument(f"{repo_path}: the content must be bytes (or None to delete)", path=repo_path)
            if repo_path in checked:
                raise InvalidArgument(f"{repo_path} is given twice", path=repo_path)
            checked[repo_path] = None if data is None else bytes(data)
        for path in checked:  # a file where another path needs a directory
            node = path.rsplit("/", 1)[0]
            while node:
                if node in checked:
                    raise InvalidArgument(f"{node} is staged as a file and as a directory of {path}", path=node)
                node = node.rsplit("/", 1)[0]
        if not checked:
            return 0
        self._try_follow(mount)
        self._require_up(mount)
        with mount.lock, mount.stage.lock:
            self._require_up(mount)
            try:
                with disk_space(f"stage files in mount {name} (nothing was staged)", name):
                    if mount.overlay is not None:
                        mount.overlay.stage_files(checked)
                    else:
                        stage_into(self.mount_dir / name, checked)
            except OSError as exc:  # a path taken by a directory, a writer racing us, permissions
                where = exc.filename or name
                raise Conflict(f"could not stage files in mount {name} (nothing was staged): {exc.strerror} "
                               f"({where})", name=name, reason=errno.errorcode.get(exc.errno, "")) from exc
        return len(checked)

    def discard(self, name: str) -> int:
        """Drop every staged change of a read-write mount; returns how many there were."""
        mount = self._get(name)
        if mount.record.mode != RW:
            raise InvalidArgument(f"mount {name} is read-only; there is nothing to discard", name=name)
        self._try_follow(mount)
        self._require_up(mount)
        with mount.lock, mount.stage.lock:
            count = len(mount.stage.changes())
            mount.stage.discard()
        return count

    def follow(self, name: str, *, keep: bool = True, overwrite: bool | Collection[str] = False) -> MountStatus:
        """Move a branch mount to its branch's head wherever the head went: on, or back below the
        mount's base (a rollback). The one action for a mount its branch left. Read-write: the staged
        changes stay pending on top of the head, each staged file winning over what the branch did to
        it (unlike ``refresh``, which refuses when they overlap); with ``keep=False`` they are dropped
        first. Local files the ignore rules leave out are no pending change: where the branch changed
        their path it is refused (WouldOverwrite, nothing changes) unless ``overwrite`` (True, or the
        paths in the way, as a refusal named them), which takes the branch's version. Read-only: a refresh."""
        mount = self._get(name)
        record = mount.record
        if record.commit is not None or not record.branch:
            raise InvalidArgument(f"mount {name} shows a fixed commit; it follows no branch", name=name)
        if record.mode == RO:
            return self.refresh(name)
        self._try_follow(mount)
        self._require_up(mount)
        with disk_space(f"follow the branch in mount {name}", name), mount.lock:
            self._require_up(mount)
            head = branch_head(self.backend, record)
            with mount.stage.lock:
                theirs = self._their_changes(record, head)
                in_the_way = self._ignored_in_the_way(mount.stage.changes_and_ignored()[1], theirs)
                self._refuse_overwrite(record, head, in_the_way, overwrite)
                if not keep:
                    mount.stage.discard()
                if head != record.base:
                    tree = self._tree(record, head)
                    if mount.workspace is not None:
                        staged = {c.path for c in mount.workspace.changes()}
                        mount.workspace.apply(tree, [fc for fc in theirs if fc.path not in staged])
                        if staged:  # the staged files stay as they are, now compared with the head
                            mount.workspace.reindex(tree)
                    else:
                        mount.overlay.drop_staged(in_the_way)
                        mount.overlay.rebase(tree)  # staged files stay in upper/ and win
                    mount.tree, record.base = tree, head
        self._save()
        return self.status(name)

    def follow_head(self, name: str) -> bool:
        """A read-only mount of a branch moves to the branch's head, as a panel's poll asks when the
        status said the head moved. Skipped (False) while another operation holds the mount (that one
        may be this very refresh, asked by an earlier poll), for read-write, fixed or broken mounts, and
        while a process has a file of the mount open or works in it: a FUSE mount is replaced by a new
        one (its readers would get ENOTCONN), a view without FUSE by another directory (a reader walking
        it would mix two commits). A later poll follows once it is free; ``refresh`` moves it at once."""
        mount = self._get(name)
        record = mount.record
        if record.mode != RO or record.commit is not None or not record.branch or mount.state == ERROR:
            return False
        if in_use(self._shown_at(mount)):
            # debug: asked again at every poll while in use
            log.debug("mount %s is in use; it follows its branch once no process has a file of it open", name)
            return False
        if not mount.lock.acquire(blocking=False):
            return False
        try:
            if self._closed or self._mounts.get(name) is not mount:
                return False
            self.refresh(name)
        finally:
            mount.lock.release()
        return True

    def _shown_at(self, mount: _Mount) -> list[str]:
        """Where a process using the mount has its files: the mount point (FUSE), or the view
        directories the mount's symlink leads to (no FUSE)."""
        if mount.view is not None:
            return [os.path.realpath(mount.view.views)]
        # the parent resolved, not the mount point: resolving that would ask the FUSE mount itself
        return [os.path.join(os.path.realpath(self.mount_dir), mount.record.name)]

    def refresh(self, name: str, *, overwrite: bool | Collection[str] = False) -> MountStatus:
        """Move a branch mount to the branch head. Read-write mounts keep their stage (rebased) unless
        the new commits touched staged paths (Conflict, nothing changes), or local files the ignore
        rules leave out (WouldOverwrite, nothing changes; ``overwrite`` as in ``follow``)."""
        with disk_space(f"refresh mount {name}", name):
            return self._refresh(name, overwrite)

    @staticmethod
    def _restore_view(mount: _Mount) -> None:
        """A refresh that stays on the same commit still replaces a no-FUSE view edited by hand."""
        if mount.view is not None and mount.state != ERROR:
            mount.view.show(mount.tree, keep_untouched=True)

    def _refresh(self, name: str, overwrite: bool | Collection[str] = False) -> MountStatus:
        mount = self._get(name)
        record = mount.record
        if record.commit is not None:
            with mount.lock:
                self._restore_view(mount)
            return self.status(name)
        with mount.lock:
            if mount.state == ERROR and mount.follow is not None and mount.stage is not None \
                    and (mount.fuse is None or mount.fuse.alive):
                self._repair_follow(mount)  # a commit landed but the stage did not follow it yet
            elif mount.state == ERROR:  # try again from scratch
                self._teardown(mount, remove=False)
                try:
                    self._present(mount)
                except Exception as exc:
                    mount.state, mount.message = ERROR, str(getattr(exc, "message", exc))
                    raise
            head = branch_head(self.backend, record)
            if head == record.base:
                self._restore_view(mount)
                return self.status(name)
            tree = self._tree(record, head)
            if record.mode == RO:
                if mount.fuse is not None:
                    self._teardown(mount, remove=False)
                    record.base = head
                    self._present(mount)
                else:
                    changed = None if record.base is None else \
                        {fc.path for fc in self.backend.diff(record.repo, record.base, head)}
                    mount.view.show(tree, changed=changed)
                    mount.tree, record.base = tree, head
            else:
                with mount.stage.lock:
                    pending, ignored = mount.stage.changes_and_ignored()
                    theirs = self._their_changes(record, head)
                    self._conflicts(record, head, {c.path for c in pending}, theirs)
                    in_the_way = self._ignored_in_the_way(ignored, theirs)
                    self._refuse_overwrite(record, head, in_the_way, overwrite)
                    if mount.workspace is not None:
                        mount.workspace.apply(tree, theirs)
                    else:
                        mount.overlay.drop_staged(in_the_way)
                        mount.overlay.rebase(tree)
                    mount.tree, record.base = tree, head
        self._save()
        return self.status(name)
