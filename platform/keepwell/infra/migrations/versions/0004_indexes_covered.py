"""drop indexes another index already covers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Each of these is the leading column of a unique index on the same table, which serves every
lookup the single-column index did; the single-column index only cost writes, and (before a
table's first ANALYZE) led the planner to scan a company's whole table to find a few keys.
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

COVERED = [  # (table, index): covered by
    ("events", "ix_events_company_id"),                      # uq_events_company_key (company_id, key)
    ("accounts", "ix_accounts_company_id"),                  # uq_accounts_owner_unit_code (company_id, owner, ...)
    ("accounts", "ix_accounts_owner"),                       # every lookup by owner is within a company: same
    ("ledger_entries", "ix_ledger_entries_event_id"),        # uq_ledger_entries_event_rule_account (event_id, ...)
    ("rulesets", "ix_rulesets_company_id"),                  # uq_rulesets_company_key (company_id, key)
    ("ruleset_versions", "ix_ruleset_versions_ruleset_id"),  # uq_ruleset_versions_ruleset_version (ruleset_id, ...)
    ("outbox", "ix_outbox_company_id"),                      # uq_outbox_company_key (company_id, key)
    ("message_templates", "ix_message_templates_company_id"),  # uq_message_templates_name_channel (company_id, ...)
]


def upgrade() -> None:
    for table, index in COVERED:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    columns = {"ix_accounts_owner": "owner", "ix_ledger_entries_event_id": "event_id",
               "ix_ruleset_versions_ruleset_id": "ruleset_id"}
    for table, index in COVERED:
        op.create_index(index, table, [columns.get(index, "company_id")], unique=False)
