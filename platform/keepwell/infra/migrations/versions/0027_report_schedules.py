"""report schedules: a report emailed on a cadence; files that outbox emails attach

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'report_schedules',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('company_id', BIG, sa.ForeignKey('companies.id'), nullable=False),
        sa.Column('report', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('format', sa.String(length=10), nullable=False),
        sa.Column('cadence', sa.String(length=10), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=True),
        sa.Column('day', sa.Integer(), nullable=True),
        sa.Column('recipients', sa.JSON(), nullable=False),
        sa.Column('next_run_at', NOW, nullable=False),
        sa.Column('last_run_at', NOW, nullable=True),
        sa.Column('last_status', sa.String(length=300), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_report_schedules_due', 'report_schedules', ['company_id', 'active', 'next_run_at'])
    op.create_table(
        'outbox_files',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'digest', name='uq_outbox_files_company_digest'),
    )


def downgrade() -> None:
    op.drop_table('outbox_files')
    op.drop_index('ix_report_schedules_due', 'report_schedules')
    op.drop_table('report_schedules')
