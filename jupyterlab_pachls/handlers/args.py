"""Input checks of the REST API: each raises a typed error (-> 400) before anything is called.

Names with ``validate_name`` / ``parse_repo``, refs with ``parse_ref``, paths with
``normalize_path``, JSON bodies against their fields.
"""

from __future__ import annotations

from ..mount import validate_mount_name
from ..pfs import (
    InvalidArgument,
    InvalidName,
    InvalidPath,
    Provenance,
    is_commit_id,
    normalize_path,
    parse_address,
    parse_ref,
    parse_repo,
    validate_name,
)


def repo_arg(raw: str) -> str:
    """A ``{repo}`` path parameter: ``repo`` or ``project/repo`` (slash encoded in the URL)."""
    if isinstance(raw, str) and (raw.startswith("/") or raw.count("/") > 1):
        raise InvalidName(f"repo name {raw!r} is invalid: expected repo or project/repo", kind="repo", name=raw)
    return str(parse_repo(raw))


def branch_arg(raw: str) -> str:
    return validate_name(raw, "branch")


def ref_arg(raw: object, what: str = "ref") -> str:
    """A branch name, a commit id, or ``branch^N``; returned unchanged once checked."""
    if not isinstance(raw, str) or not raw:
        raise InvalidArgument(f"{what} must be a branch name, a commit id or branch^N", field=what)
    parse_ref(raw)
    return raw


def commit_id_arg(value: object, name: str, message: str | None = None) -> str | None:
    """An optional body field that must be a commit id when given."""
    if value is not None and (not isinstance(value, str) or not is_commit_id(value)):
        raise InvalidArgument(message or f"{name!r} must be a commit id", field=name)
    return value


def mount_name_arg(raw: object) -> str:
    """A mount name, as the mount package accepts it (letters, digits, '_', '-', '.'; no '..')."""
    return validate_mount_name(raw)


def absolute_path_arg(raw: str, name: str = "path") -> str:
    """A repo-absolute path: ``cats/1.png`` or ``..\\x`` is refused, never silently taken as ``/cats/1.png``."""
    if not raw.startswith("/"):
        raise InvalidPath(f"{name} {raw[:80]!r} is relative; paths are repo-absolute (start with '/')",
                          path=raw[:80])
    return normalize_path(raw)


def check_fields(body: dict, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise InvalidArgument(
            f"unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(required + optional)}",
            fields=unknown,
        )
    for name in required:
        if name not in body:
            raise InvalidArgument(f"Field {name!r} is required.", field=name)


def string_field(body: dict, name: str, *, required: bool = False, allow_empty: bool = True,
                 default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (not allow_empty and not value):
        kind = "a non-empty string" if not allow_empty else "a string"
        raise InvalidArgument(f"Field {name!r} ({kind}) is required." if required else
                              f"Field {name!r} must be {kind}.", field=name)
    return value


def provenance_arg(raw: object) -> list[Provenance]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidArgument("'provenance' must be a list of 'repo@ref' strings or {repo, commit} objects",
                              field="provenance")
    out = []
    for item in raw:
        if isinstance(item, str):
            address = parse_address(item, require_ref=True)
            if address.path is not None:
                raise InvalidArgument(f"provenance {item!r} must not name a path", field="provenance")
            out.append(Provenance(repo=address.repo_key, commit=address.ref_text))
        elif isinstance(item, dict):
            check_fields(item, ("repo", "commit"), ("branch",))
            branch = item.get("branch")
            if branch is not None:
                branch_arg(branch)
            out.append(Provenance(repo=repo_arg(item["repo"]), commit=ref_arg(item["commit"], "commit"),
                                  branch=branch))
        else:
            raise InvalidArgument("each provenance entry must be 'repo@ref' or {repo, commit}",
                                  field="provenance")
    return out
