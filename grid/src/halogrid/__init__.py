"""halogrid: an open, self-hostable Halo-compatible server."""
from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    # One wheel ships the grid and the agent, with one version: haloagent.__version__, read
    # by grid/pyproject.toml. halogrid never imports haloagent, so it asks the installed
    # distribution (an editable install reads it again when reinstalled: `make venv`).
    try:
        return version("halogrid")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__ = _version()
