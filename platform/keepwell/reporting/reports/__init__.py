"""The reports, one module each; importing this package registers them all (catalog.report)."""

from . import churn, deferred, membership_summary, operations, points, revenue, statement  # noqa: F401
