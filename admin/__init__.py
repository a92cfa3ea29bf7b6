"""The admin UI: Flask-Admin at /admin, where contractors configure their programs without code.

It depends on the core (`keepwell`) and never the reverse; the app factory mounts it.
"""

from .site import init_admin

__all__ = ["init_admin"]
