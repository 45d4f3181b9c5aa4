"""haloagent: the open Halo agent. Python 3.8+ standard library only."""

__version__ = "0.1.0"
