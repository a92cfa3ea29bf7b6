"""The reports, one module each; importing this package registers them all (catalog.report)."""

from . import churn, deferred, membership_summary, operations, points, revenue, statement  # noqa: F401

# The order `keepwell report list`, the API and the admin show them in: as a month is closed.
ORDER = ("statement", "membership-summary", "churn", "recurring-revenue", "deferred-revenue", "points", "operations")
