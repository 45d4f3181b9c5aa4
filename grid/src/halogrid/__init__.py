"""halogrid: an open, self-hostable Halo-compatible server."""
