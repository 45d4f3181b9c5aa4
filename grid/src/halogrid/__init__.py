"""halogrid: an open, self-hostable Halo-compatible server."""

__version__ = "0.1.0"
