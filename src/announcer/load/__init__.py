"""Loading: from files on disk to a validated :class:`~announcer.model.Site`."""

from announcer.load.project import load_site

__all__ = ["load_site"]
