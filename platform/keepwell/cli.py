"""The `keepwell` console script (`keepwell.cli:main`): see keepwell.interfaces.cli."""

from .interfaces.cli.main import main

__all__ = ["main"]
