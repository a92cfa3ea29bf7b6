"""visits: service durations, technicians (skills, time off), visits, calendar feeds

Revision ID: 0029
Revises: 0026
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'service_durations',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('service_code', sa.String(length=64), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('set_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'service_code', name='uq_service_durations_company_code'),
    )
    op.create_index('ix_service_durations_company_id', 'service_durations', ['company_id'])
    op.create_table(
        'technicians',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('hours', sa.JSON(), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('home_location_id', sa.String(length=40), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
    )
    op.create_index('ix_technicians_company_id', 'technicians', ['company_id'])
    op.create_table(
        'technician_skills',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('technician_id', sa.String(length=40), nullable=False),
        sa.Column('service_code', sa.String(length=64), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=True),
        sa.UniqueConstraint('technician_id', 'service_code', name='uq_technician_skills_tech_code'),
    )
    op.create_index('ix_technician_skills_company_id', 'technician_skills', ['company_id'])
    op.create_index('ix_technician_skills_technician_id', 'technician_skills', ['technician_id'])
    op.create_table(
        'technician_time_off',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('technician_id', sa.String(length=40), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=True),
    )
    op.create_index('ix_technician_time_off_company_id', 'technician_time_off', ['company_id'])
    op.create_index('ix_technician_time_off_technician_id', 'technician_time_off', ['technician_id'])
    op.create_table(
        'visits',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('membership_id', sa.String(length=40), nullable=True),
        sa.Column('service_code', sa.String(length=64), nullable=False),
        sa.Column('starts_at', NOW, nullable=False),
        sa.Column('ends_at', NOW, nullable=False),
        sa.Column('technician_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('cancelled_by', sa.String(length=20), nullable=True),
        sa.Column('cancel_reason', sa.String(length=300), nullable=True),
        sa.Column('request_id', sa.String(length=40), nullable=True),
        sa.Column('event_key', sa.String(length=255), nullable=True),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('changed_at', NOW, nullable=True),
    )
    op.create_index('ix_visits_company_id', 'visits', ['company_id'])
    op.create_index('ix_visits_customer_id', 'visits', ['customer_id'])
    op.create_index('ix_visits_technician_starts', 'visits', ['technician_id', 'starts_at'])
    op.create_table(
        'calendar_feeds',
        sa.Column('token', sa.String(length=64), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('owner_kind', sa.String(length=20), nullable=False),
        sa.Column('owner_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'owner_kind', 'owner_id', name='uq_calendar_feeds_owner'),
    )
    op.create_index('ix_calendar_feeds_company_id', 'calendar_feeds', ['company_id'])


def downgrade() -> None:
    for table in ('calendar_feeds', 'visits', 'technician_time_off', 'technician_skills', 'technicians',
                  'service_durations'):
        op.drop_table(table)
