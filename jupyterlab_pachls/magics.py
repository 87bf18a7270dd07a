"""IPython magics over the Python API: ``%load_ext jupyterlab_pachls``, then ``%pachls ...``.

::

    %pachls repos
    %pachls log images@master -n 5
    %pachls mount labels@master --rw
    %%pachls commit labels -m "round 1"
    ...cell that writes files under the mount...
    %pachls commit labels -m "just these" --path /a.json --path /b.json   # the rest stays pending
    %pachls follow labels --drop                        # to the branch head wherever it went
    df = %pachls labels labels@master --data images@master
    %pachls export labels@master --format COCO          # labels-<commit>-coco.json
    %pachls put images@master:/raw ./photos             # ./photos -> /raw/photos/..., one commit
    %pachls get images@master:/cats ./cats              # /cats/... -> ./cats/..., one pass
    commit = %pachls wait labels@master --timeout 3600

``%pachls --help`` lists the subcommands, ``%pachls SUBCOMMAND --help`` explains one.
Table results render as HTML in JupyterLab and as text elsewhere; the value is returned
too (a pandas DataFrame when pandas is installed, else a :class:`~jupyterlab_pachls.client.Table`,
a list of dicts). User mistakes (unknown repo, bad address, unmounted name, a server
refusal) print one line, never a traceback.

The client is found once per session (see :func:`jupyterlab_pachls.client.connect`): the
Jupyter server this kernel belongs to, so mounts and pending changes are the panel's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any, Callable, Iterable

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .client import Client, Table, connect
from .pfs import PfsError, Unavailable
from .pfs.errors import WouldOverwrite


class UsageError(Exception):
    """A command line argparse refused (message is one line)."""


class HelpShown(Exception):
    """``--help`` was printed; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise HelpShown()


def build_parser() -> argparse.ArgumentParser:
    """The ``%pachls`` command line: one subparser per subcommand, each with ``--help``."""
    parser = _Parser(prog="%pachls", description="Versioned data and labels (jupyterlab-pachls).")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help)

    add("repos", "List repos and their branches.")
    p = add("branches", "List the branches of a repo with their heads.")
    p.add_argument("repo", metavar="REPO")
    p = add("log", "Commit history of a branch (or back from a commit), newest first.")
    p.add_argument("address", metavar="REPO@BRANCH")
    p.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="at most N commits (default 20)")
    p = add("ls", "List a directory of a commit.")
    p.add_argument("address", metavar="REPO@REF:/path")
    p.add_argument("-n", "--limit", type=int, default=1000, metavar="N", help="at most N entries (default 1000)")
    p = add("mount", "Mount REPO@REF as a folder (read-only unless --rw).")
    p.add_argument("address", metavar="REPO@REF")
    p.add_argument("--rw", action="store_true", help="read-write: writes are staged until commit")
    p.add_argument("--name", metavar="NAME", help="mount name (default: the repo name, or repo_branch)")
    p = add("unmount", "Unmount a mount (refused while it has staged changes, unless --discard).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--discard", action="store_true", help="drop staged changes")
    add("mounts", "List mounts with their state and pending changes.")
    add("status", "Where the magics go (server or store) and the mounts.")
    p = add("diff", "Pending changes of a mount (diff NAME), or the changes between two commits "
                    "(diff REPO@A REPO@B; diff REPO@REF alone compares with its parent).")
    p.add_argument("target", metavar="NAME|REPO@A")
    p.add_argument("other", metavar="REPO@B", nargs="?")
    p.add_argument("--labels", action="store_true",
                   help="between two label commits: annotation-level changes instead of files")
    p = add("commit", "Commit every staged change of a read-write mount as one commit (with --path, only "
                      "those; the rest stays pending). As a cell magic it runs the cell first, then commits what "
                      "the cell wrote in one commit (nothing written: no commit; the cell fails: no commit, its "
                      "writes stay staged). Changes staged before the cell go into the same commit.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-m", "--message", required=True, metavar="MESSAGE")
    p.add_argument("--provenance", action="append", default=[], metavar="REPO@REF",
                   help="a data commit these files were made from (repeatable)")
    p.add_argument("--path", dest="paths", action="append", metavar="PATH",
                   help="commit only this pending path of the mount (/a.txt, or a.txt from the mount's top; "
                        "repeatable); the other changes stay pending")
    p = add("follow", "Move a mount of a branch to the branch's head wherever it went (on, or back after a "
                      "rollback). A read-write mount keeps its staged changes pending on top of the head, each "
                      "of your files winning over what the branch did to it (--keep, the default), or drops "
                      "them (--drop). Local files the mount's ignore rules keep out of commits (checkpoints, "
                      ".pachlsignore) are never replaced unasked: where the branch changed them it refuses "
                      "and names them, unless --overwrite.")
    p.add_argument("name", metavar="NAME")
    pending = p.add_mutually_exclusive_group()
    pending.add_argument("--keep", dest="keep", action="store_true", default=True,
                         help="keep the staged changes on top of the head (default)")
    pending.add_argument("--drop", dest="keep", action="store_false", help="drop the staged changes")
    p.add_argument("--overwrite", action="store_true",
                   help="take the branch's version of ignored local files it changed (they are lost)")
    p = add("discard", "Drop every staged change of a mount.")
    p.add_argument("name", metavar="NAME")
    p = add("rollback", "Point a branch at an older commit (recorded; no history is lost).")
    p.add_argument("address", metavar="REPO@BRANCH")
    p.add_argument("commit", metavar="COMMIT", help="a commit id or BRANCH^N")
    p = add("blame", "Who labeled a file: every commit that changed its label, newest first.")
    p.add_argument("address", metavar="REPO@REF:/path")
    p = add("labels", "Labels at a commit: one row per (data file, annotation).")
    p.add_argument("address", metavar="REPO@REF")
    p.add_argument("--data", metavar="REPO[@REF]",
                   help="only labels made on this data repo (and on REF's commit or an ancestor)")
    p.add_argument("--path", default="/", metavar="/DIR", help="only label files below this path")
    p = add("export", "Labels of a commit in a training format (COCO, YOLO, VOC, CSV, JSON_MIN), rendered "
                      "by Label Studio's converter; image paths pin the exact data commit. YOLO and VOC are a zip.")
    p.add_argument("address", metavar="REPO@REF")
    p.add_argument("dest", nargs="?", metavar="DEST",
                   help="a file, or a directory for <repo>-<commit>-<format>.<ext> (default: here)")
    p.add_argument("--format", required=True, metavar="FORMAT", help="COCO, YOLO, VOC, CSV or JSON_MIN")
    p.add_argument("--classes", metavar="A,B,...",
                   help="label names in category order (COCO/YOLO ids 0, 1, ...); default: those found, sorted")
    p = add("put", "Import local files, directories (recursively) and globs into ONE commit on a branch "
                   "(created if missing); each source keeps its own name below /DEST, as cp -r does. "
                   "Shows progress (files, bytes, rate); nothing is committed if anything fails.")
    p.add_argument("address", metavar="REPO@BRANCH[:/DEST]")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a file, a directory or a glob ('data/*.png')")
    p.add_argument("-m", "--message", default="", metavar="TEXT", help="the commit message (default: Import N files)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p = add("get", "Copy a directory, a file or the whole repo at a commit into a local directory (made "
                   "if missing), read in one pass: what is below /PATH keeps its place under LOCAL_DIR.")
    p.add_argument("address", metavar="REPO@REF[:/PATH]")
    p.add_argument("dest", nargs="?", default=".", metavar="LOCAL_DIR", help="where to write (default: here)")
    p = add("wait", "Block until a commit lands on REPO@BRANCH, print it and return it (the oldest new one, "
                    "if several landed). With --after, commits that landed after COMMIT count too, so "
                    "`wait labels@master --after {last.id}` in a loop sees every commit once.")
    p.add_argument("address", metavar="REPO@BRANCH")
    p.add_argument("--after", metavar="COMMIT", help="a commit id (or BRANCH^N) to wait after (default: the head now)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="give up after S seconds (default: wait as long as it takes)")
    p = add("create-repo", "Create an empty repo.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description", default="", metavar="TEXT")
    return parser


PARSER = build_parser()


def parse(line: str) -> argparse.Namespace:
    """Parse a ``%pachls`` line; UsageError for a bad one, HelpShown after printing help."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%pachls: {exc}") from None
    if not argv:
        PARSER.print_help()
        raise HelpShown()
    args, extra = PARSER.parse_known_args(argv)
    if args.command == "export" and args.dest is None and len(extra) == 1 and not extra[0].startswith("-"):
        # `export labels@master --format COCO out/`: argparse takes positionals only side by side
        args.dest, extra = extra[0], []
    if extra:
        PARSER.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        PARSER.print_help()
        raise HelpShown()
    return args


# -- rows for display -------------------------------------------------------------------------
def _prov(items: Iterable[Any]) -> list[str]:
    return [f"{p.repo}@{p.commit}" if hasattr(p, "repo") else str(p) for p in items]


def repo_rows(repos) -> Table:
    return Table(({"repo": r.key, "branches": list(r.branches), "size_bytes": r.size_bytes,
                   "created": r.created, "description": r.description} for r in repos), title="repos",
                 columns=("repo", "branches", "size_bytes", "created", "description"))


def branch_rows(branches) -> Table:
    return Table(({"branch": b.name, "head": b.head.id if b.head else None,
                   "message": b.head.message if b.head else None,
                   "author": b.head.author if b.head else None,
                   "time": b.head.finished if b.head else None} for b in branches),
                 columns=("branch", "head", "message", "author", "time"), title="branches")


def commit_row(c) -> dict:
    return {"commit": c.id, "branch": c.branch, "parent": c.parent, "message": c.message, "author": c.author,
            "finished": c.finished, "files": c.n_files, "size_bytes": c.size_bytes,
            "provenance": _prov(c.provenance)}


def commit_rows(commits) -> Table:
    return Table((commit_row(c) for c in commits), title="commits",
                 columns=("commit", "branch", "parent", "message", "author", "finished", "files",
                          "size_bytes", "provenance"))


def file_rows(files) -> Table:
    return Table(({"path": f.path, "type": f.type, "size": f.size, "committed": f.committed} for f in files),
                 columns=("path", "type", "size", "committed"), title="files")


def mount_rows(mounts) -> Table:
    # diverged: the branch was rolled back below the mount's commit (behind says 0): %pachls follow moves it
    return Table(({"name": m.name, "repo": m.repo, "branch": m.branch, "base": m.base, "mode": m.mode,
                   "state": m.state, "pending": m.pending, "behind": m.behind, "diverged": m.diverged,
                   "mountpoint": m.mountpoint, "message": m.message} for m in mounts),
                 columns=("name", "repo", "branch", "base", "mode", "state", "pending", "behind", "diverged",
                          "mountpoint", "message"), title="mounts")


def pending_rows(changes) -> Table:
    return Table(({"path": c.path, "change": c.change, "size": c.size, "old_size": c.old_size}
                  for c in changes.changes), columns=("path", "change", "size", "old_size"),
                 title="pending changes")


def change_rows(changes) -> Table:
    return Table(({"path": c.path, "change": c.change, "old_size": c.old.size if c.old else None,
                   "new_size": c.new.size if c.new else None} for c in changes),
                 columns=("path", "change", "old_size", "new_size"), title="changes")


def annotation_change_rows(changes) -> Table:
    return Table(({"path": c.path, "annotation": c.annotation, "change": c.change, "annotator": c.annotator,
                   "changed_by": list(c.changed_by), "before": list(c.before), "after": list(c.after)}
                  for c in changes),
                 columns=("path", "annotation", "change", "annotator", "changed_by", "before", "after"),
                 title="label changes")


def blame_rows(entries) -> Table:
    return Table(({"commit": e.commit, "time": e.time, "author": e.author, "message": e.message,
                   "change": e.change, "annotators": list(e.annotators), "changed_by": list(e.changed_by),
                   "labels": list(e.labels), "data_commit": e.data_commit, "provenance": _prov(e.provenance)}
                  for e in entries),
                 columns=("commit", "time", "author", "message", "change", "annotators", "changed_by", "labels",
                          "data_commit", "provenance"), title="label commits")


def as_result(table: Table) -> Any:
    """The value a magic returns: a DataFrame when pandas is installed, else the Table."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        return table
    return table.to_frame()


def mount_paths(paths: list[str] | None) -> list[str] | None:
    """``--path`` values as repo paths of the mount: ``a.txt`` and ``./a.txt`` are ``/a.txt`` (the server
    checks each)."""
    if paths is None:
        return None
    return [p if p.startswith("/") else "/" + p.removeprefix("./") for p in paths]


def first_line(message: str) -> str:
    lines = [line for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "error"


# -- the magics -------------------------------------------------------------------------------
@magics_class
class PachlsMagics(Magics):
    """``%pachls`` / ``%%pachls``."""

    def __init__(self, shell: Any = None, client_factory: Callable[[], Client] = connect) -> None:
        super().__init__(shell)
        self._client: Client | None = None
        self._client_factory = client_factory

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @line_cell_magic
    def pachls(self, line: str, cell: str | None = None) -> Any:
        """Versioned data and labels: %pachls --help lists the subcommands."""
        try:
            args = parse(line)
            if args.command == "commit" and not args.message.strip():
                # said before the cell runs: a cell whose writes cannot be committed should not run
                raise UsageError(f"{'%%' if cell is not None else '%'}pachls commit: the commit message is empty; "
                                 f"say what changed with -m \"...\" (nothing was {'run or ' if cell is not None else ''}"
                                 "committed)")
            if cell is not None:
                if args.command != "commit":
                    raise UsageError("%%pachls as a cell magic only runs 'commit NAME -m MESSAGE'")
                return self._cell_commit(args, cell)
            return getattr(self, "do_" + args.command.replace("-", "_"))(args)
        except HelpShown:
            return None
        except UsageError as exc:
            self._say_error(str(exc))
        except PfsError as exc:
            if isinstance(exc, Unavailable) and self._client is not None and self._client.mode == "server":
                self._client.close()  # the server may be gone: look again next time
                self._client = None
            self._say_error(f"pachls: {first_line(exc.message)}")
        return None

    @staticmethod
    def _say_error(message: str) -> None:
        print(first_line(message), file=sys.stderr)

    # subcommands -------------------------------------------------------------------------
    def do_repos(self, args):
        return as_result(repo_rows(self.client.repos()))

    def do_branches(self, args):
        return as_result(branch_rows(self.client.branches(args.repo)))

    def do_log(self, args):
        if args.limit < 1:
            raise UsageError("%pachls log: -n must be at least 1")
        return as_result(commit_rows(self.client.log(args.address, limit=args.limit)))

    def do_ls(self, args):
        if args.limit < 1:
            raise UsageError("%pachls ls: -n must be at least 1")
        return as_result(file_rows(self.client.ls(args.address, limit=args.limit)))

    def do_mount(self, args):
        m = self.client.mount(args.address, rw=args.rw, name=args.name)
        mode = "read-write" if m.mode == "rw" else "read-only"
        where = m.mountpoint
        try:
            relative = os.path.relpath(where)
            if not relative.startswith(".."):
                where = relative  # what the notebook's own paths look like
        except ValueError:
            pass
        print(f"Mounted {args.address} {mode} as '{m.name}' at {where}")
        return None

    def do_unmount(self, args):
        self.client.unmount(args.name, discard=args.discard)
        print(f"Unmounted '{args.name}'" + (" (staged changes dropped)" if args.discard else ""))

    def do_mounts(self, args):
        return as_result(mount_rows(self.client.mounts()))

    def do_status(self, args):
        status = self.client.status()
        backend = status.get("backend") or {}
        where = status["where"]
        kind, address = backend.get("kind"), backend.get("address")
        extra = f" ({kind} store at {address})" if status["mode"] == "server" and kind else ""
        print(f"pachls: {where}{extra}")
        if status.get("mounts") is None:
            print(f"mounts: {status.get('mounts_error')}")
            return None
        return as_result(mount_rows(status["mounts"]))

    def do_diff(self, args):
        target = args.target
        if "@" not in target:
            if args.other is not None or args.labels:
                raise UsageError("%pachls diff: give a mount NAME alone, or REPO@A [REPO@B]")
            return as_result(pending_rows(self.client.changes(target)))
        if args.labels:
            if args.other is None:
                return as_result(annotation_change_rows(self.client.label_diff(target)))
            return as_result(annotation_change_rows(self.client.label_diff(args.other, target)))
        if args.other is None:
            return as_result(change_rows(self.client.diff(target)))
        return as_result(change_rows(self.client.diff(args.other, target)))

    def do_commit(self, args):
        commit = self.client.commit(args.name, args.message, provenance=args.provenance,
                                    paths=mount_paths(args.paths))
        self._say_committed(args.name, commit)

    def do_follow(self, args):
        try:
            m = self.client.follow(args.name, keep=args.keep, overwrite=args.overwrite)
        except WouldOverwrite as exc:
            paths = exc.details.get("paths") or []
            raise UsageError(f"%pachls follow: the branch changed {exc.details.get('count', len(paths))} ignored "
                             f"local file(s) of mount '{args.name}' ({', '.join(paths[:5])}); nothing changed. "
                             "Move them away, or add --overwrite to take the branch's version") from None
        where = f"{m.repo}@{m.branch}"
        kept = f"; {m.pending} pending change(s) on top" if m.mode == "rw" and m.pending else ""
        print(f"Mount '{m.name}' follows {where} at {m.base or '(no commit yet)'}{kept}")
        return m

    @staticmethod
    def _say_committed(name: str, commit) -> None:
        where = f"{commit.repo}@{commit.branch}" if commit.branch else commit.repo
        files = f"{commit.n_files} files, " if commit.n_files else ""
        print(f"Committed mount '{name}' to {where} ({files}message {commit.message!r}): {commit.id}")

    def do_discard(self, args):
        before = self.client.changes(args.name)
        self.client.discard(args.name)
        print(f"Discarded {len(before)} staged change(s) of mount '{args.name}'")

    def do_rollback(self, args):
        client = self.client
        old = client.inspect_commit(args.address)
        branch = client.rollback(args.address, args.commit)
        new = branch.head.id if branch.head else None
        print(f"{args.address} now points at {new} (was {old.id})")

    def do_blame(self, args):
        return as_result(blame_rows(self.client.blame(args.address)))

    def do_labels(self, args):
        return as_result(self.client.labels(args.address, data=args.data, path=args.path))

    def do_export(self, args):
        classes = args.classes.split(",") if args.classes is not None else None
        path = self.client.export_labels(args.address, args.format, args.dest, classes=classes)
        print(f"Exported {args.address} as {args.format.upper()} to {path} ({path.stat().st_size:,} bytes)")
        return path

    def do_put(self, args):
        commit = self.client.put(args.address, *args.paths, message=args.message, progress=args.progress)
        print(f"Committed {commit.message!r} to {commit.repo}@{commit.branch}: {commit.id}")
        return commit

    def do_get(self, args):
        done = self.client.get(args.address, args.dest)
        print(f"Copied {done.files:,} files ({done.bytes:,} bytes) of {done.source} into {done.path}")
        return done

    def do_wait(self, args):
        if args.timeout is not None and not args.timeout >= 0:
            raise UsageError("%pachls wait: --timeout must be a number of seconds, 0 or more")
        commit = self.client.wait(args.address, after=args.after, timeout=args.timeout)
        if commit is None:
            print(f"No new commit on {args.address} within {args.timeout:g} s", file=sys.stderr)
            return None
        said = f" by {commit.author}" if commit.author else ""
        print(f"New commit on {args.address}: {commit.id} ({commit.message!r}{said})")
        return commit

    def do_create_repo(self, args):
        repo = self.client.create_repo(args.name, description=args.description)
        print(f"Created repo '{repo.key}'")

    # cell magic ------------------------------------------------------------------------------
    def _cell_commit(self, args, cell: str) -> None:
        client = self.client
        mount = client.mount_status(args.name)
        if mount.mode != "rw":
            raise UsageError(f"mount '{args.name}' is read-only; mount it with --rw to write and commit")
        before = self._snapshot(mount, client.changes(args.name))
        result = self.shell.run_cell(cell, store_history=False)
        if not result.success:
            print(f"The cell failed: nothing committed; what it wrote stays staged in mount '{args.name}' "
                  f"(%pachls diff {args.name} shows it, %pachls discard {args.name} drops it)", file=sys.stderr)
            return None
        after_changes = client.changes(args.name)
        if self._snapshot(mount, after_changes) == before:
            print(f"The cell wrote nothing into mount '{args.name}': no commit.")
            return None
        paths = mount_paths(args.paths)
        commit = client.commit(args.name, args.message, provenance=args.provenance, paths=paths)
        if before and paths is None:
            print(f"({len(before)} change(s) staged before the cell went into this commit too)")
        self._say_committed(args.name, commit)
        return None

    @staticmethod
    def _snapshot(mount, changes) -> set:
        """Staged changes with their file times, to tell whether the cell wrote anything."""
        out = set()
        for c in changes.changes:
            stamp = None
            if c.change != "deleted" and mount.mountpoint:
                try:
                    st = os.stat(os.path.join(mount.mountpoint, c.path.lstrip("/")))
                    stamp = (st.st_mtime_ns, st.st_size)
                except OSError:
                    pass
            out.add((c.path, c.change, c.size, stamp))
        return out


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyterlab_pachls``: register ``%pachls`` / ``%%pachls``."""
    ipython.register_magics(PachlsMagics(ipython))
