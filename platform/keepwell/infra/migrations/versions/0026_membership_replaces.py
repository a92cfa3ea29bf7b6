"""a membership started by a change of tier names the one it replaces (reports tell a change
of tier from a new member and from a cancellation)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memberships') as t:
        t.add_column(sa.Column('replaces', sa.String(length=40), nullable=True))
    op.create_index('ix_memberships_replaces', 'memberships', ['replaces'])
    # The changes of tier made before: their enrolment event says which membership each replaced.
    events = sa.table('events', sa.column('membership_id', sa.String), sa.column('type', sa.String),
                      sa.column('status', sa.String), sa.column('payload', sa.JSON))
    members = sa.table('memberships', sa.column('id', sa.String), sa.column('replaces', sa.String))
    bind = op.get_bind()
    rows = bind.execute(sa.select(events.c.membership_id, events.c.payload).where(
        events.c.type == 'enrolled', events.c.status == 'processed', events.c.membership_id.is_not(None),
        sa.cast(events.c.payload, sa.Text).like('%replaces%')))
    found = [{'mid': mid, 'old': str((payload.get('data') or {})['replaces'])} for mid, payload in rows
             if isinstance(payload, dict) and (payload.get('data') or {}).get('replaces')]
    if found:
        bind.execute(members.update().where(members.c.id == sa.bindparam('mid'))
                     .values(replaces=sa.bindparam('old')), found)


def downgrade() -> None:
    op.drop_index('ix_memberships_replaces', table_name='memberships')
    with op.batch_alter_table('memberships') as t:
        t.drop_column('replaces')
