"""The versioned data model (Pachyderm semantics) and its backends."""

from .address import (
    DEFAULT_PROJECT,
    Address,
    RepoAddress,
    is_commit_id,
    normalize_path,
    parse_address,
    parse_ref,
    parse_repo,
    validate_name,
)
from .backend import Backend, CommitWriter, Content
from .errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    ParseError,
    PfsError,
    Unavailable,
)
from .factory import open_backend
from .local import FsckReport, LocalBackend
from .model import Branch, BranchMove, Commit, FileChange, FileInfo, FilePage, Provenance, Repo

__all__ = [
    "DEFAULT_PROJECT", "Address", "RepoAddress", "is_commit_id", "normalize_path", "parse_address",
    "parse_ref", "parse_repo", "validate_name", "Backend", "CommitWriter", "Content", "AlreadyExists",
    "Conflict", "InvalidArgument", "InvalidName", "InvalidPath", "NotFound", "ParseError", "PfsError",
    "Unavailable", "FsckReport", "LocalBackend", "Branch", "BranchMove", "Commit", "FileChange",
    "FileInfo", "FilePage", "Provenance", "Repo", "open_backend",
]
