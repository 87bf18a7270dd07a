"""Our repo keys as Pachyderm's pfs messages, for both ends of the wire.

A repo key is the canonical name ``images`` (default project) or ``team/images``. The cluster
client (``pfs/pachyderm/``) builds requests with these functions and the pachd stand-in
(``pfs/server/``) builds replies with them, so the two agree on how a key becomes a message.
Keys given here are canonical already: nothing is validated again.
"""

from __future__ import annotations

from pachyderm_sdk.api import pfs

from .address import DEFAULT_PROJECT


def key_of(project: str, name: str) -> str:
    return name if project == DEFAULT_PROJECT else f"{project}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """(project, repo name) of a key."""
    project, _, name = key.rpartition("/")
    return (project or DEFAULT_PROJECT), name


def repo_text(key: str) -> str:
    """A key as pachd writes a repo in its messages: always with its project (``default/images``)."""
    project, name = split_key(key)
    return f"{project}/{name}"


def repo_key_of(repo: pfs.Repo) -> str:
    return key_of((repo.project.name if repo.project else "") or DEFAULT_PROJECT, repo.name)


def repo_msg(key: str) -> pfs.Repo:
    project, name = split_key(key)
    return pfs.Repo(name=name, type="user", project=pfs.Project(name=project))


def branch_msg(key: str, name: str) -> pfs.Branch:
    return pfs.Branch(repo=repo_msg(key), name=name)


def commit_msg(key: str, commit_id: str, branch: str | None = None) -> pfs.Commit:
    msg = pfs.Commit(repo=repo_msg(key), id=commit_id)
    if branch:
        msg.branch = branch_msg(key, branch)
    return msg


def file_msg(key: str, commit_id: str, path: str) -> pfs.File:
    return pfs.File(commit=commit_msg(key, commit_id), path=path)
