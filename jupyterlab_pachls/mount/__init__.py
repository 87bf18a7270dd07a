"""Mounts: versioned repos as folders, staged writes, one commit on request."""

from .manager import MountManager, validate_mount_name
from .model import Change, Changes, MountStatus

__all__ = ["MountManager", "MountStatus", "Change", "Changes", "validate_mount_name"]
