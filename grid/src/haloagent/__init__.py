"""haloagent: the open Halo agent. Python 3.8+ standard library only."""

# The version of the whole `halogrid` distribution (grid/pyproject.toml reads it from here;
# halogrid reports the installed distribution's): a plain literal, so the agent knows it
# in its zipapp and in a source tree too.
__version__ = "0.1.0"
