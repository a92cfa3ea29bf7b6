"""sessions that can be ended, API key scopes, a company's limits on what its clients send

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- users.session_version: a session cookie carries the version it was signed in under; signing
  out, a password change or disabling the user bumps it, which ends every session of that user.
- api_keys.scopes (space-separated) and api_keys.hint (the first characters of the secret, to
  tell keys apart in a list). Keys made before this keep what they could do, except adjustments,
  which need the `adjustments:write` scope from now on.
- companies: how far in the future and in the past an event may be dated, how many periods
  one event may close, and the largest manual adjustment (cents, points).
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as t:
        t.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('api_keys') as t:
        t.add_column(sa.Column('scopes', sa.String(length=200), nullable=False,
                               server_default='read events:write customers:write memberships:write'))
        t.add_column(sa.Column('hint', sa.String(length=16), nullable=True))
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('phone_region', sa.String(length=2), nullable=False, server_default='US'))
        t.add_column(sa.Column('future_hours', sa.Integer(), nullable=False, server_default='24'))
        t.add_column(sa.Column('backdate_days', sa.Integer(), nullable=False, server_default='3650'))
        t.add_column(sa.Column('max_periods_per_event', sa.Integer(), nullable=False, server_default='120'))
        t.add_column(sa.Column('adjustment_limit_cents', sa.BigInteger(), nullable=False,
                               server_default='100000'))
        t.add_column(sa.Column('adjustment_limit_points', sa.BigInteger(), nullable=False,
                               server_default='100000'))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        for name in ('adjustment_limit_points', 'adjustment_limit_cents', 'max_periods_per_event', 'backdate_days',
                     'future_hours', 'phone_region'):
            t.drop_column(name)
    with op.batch_alter_table('api_keys') as t:
        t.drop_column('hint')
        t.drop_column('scopes')
    with op.batch_alter_table('users') as t:
        t.drop_column('session_version')
