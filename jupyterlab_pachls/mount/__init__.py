"""Mounts: versioned repos as folders, staged writes, one commit on request."""

from .manager import MountManager, validate_mount_name
from .model import Change, Changes, MountStatus


def fuse_status() -> tuple[bool, str]:
    """Whether mounts can use FUSE here, and if not why. Loads libfuse (``fusefs``) to answer, so a
    machine without it gets a reason rather than an ImportError or OSError."""
    try:
        from .fusefs import fuse_available
    except (ImportError, OSError) as exc:  # mfusepy missing, or no libfuse for it to load
        return False, f"libfuse cannot be loaded ({exc})"
    return fuse_available()


__all__ = ["MountManager", "MountStatus", "Change", "Changes", "fuse_status", "validate_mount_name"]
