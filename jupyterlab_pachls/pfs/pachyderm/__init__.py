"""The ``Backend`` interface on a Pachyderm cluster, through ``pachyderm-sdk``."""

from .backend import META_REPO, STAGING_PREFIX, PachydermBackend

__all__ = ["PachydermBackend", "STAGING_PREFIX", "META_REPO"]
