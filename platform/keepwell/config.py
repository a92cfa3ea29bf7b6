"""Settings come from the environment so one build runs embedded or scaled out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQLITE = Path("instance") / "keepwell.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    company: str
    # Signs the admin UI's session cookies. Every web process must share it: set it when
    # running more than one (gunicorn); unset, the app keeps a generated one in instance/.
    secret_key: str | None = None

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        url = env.get("KEEPWELL_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}"
        return cls(
            database_url=normalise_database_url(url),
            redis_url=env.get("KEEPWELL_REDIS_URL") or None,
            company=env.get("KEEPWELL_COMPANY") or "default",
            secret_key=env.get("KEEPWELL_SECRET_KEY") or None,
        )


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
