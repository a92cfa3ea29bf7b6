"""The web app factory (`keepwell.app:create_app`, for gunicorn): see keepwell.interfaces.http."""

from .interfaces.http.app import create_app

__all__ = ["create_app"]
