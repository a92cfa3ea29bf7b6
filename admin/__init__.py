"""The admin UI (installed as `keepwell.interfaces.admin`): Flask-Admin at /admin, where
contractors configure their programs without code. It calls the use cases only; the app
factory mounts it."""

from .site import init_admin

__all__ = ["init_admin"]
