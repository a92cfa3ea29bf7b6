"""The reports, one module each; importing this package registers them all (catalog.report)."""

from . import (
    operations,  # noqa: F401
    points,  # noqa: F401
    statement,  # noqa: F401
)
