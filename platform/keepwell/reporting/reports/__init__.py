"""The reports, one module each; importing this package registers them all (catalog.report)."""

from . import statement  # noqa: F401
from . import points  # noqa: F401
