"""report files: large reports prepared in the background (the admin's "Your report files"),
with their progress and, once done, the file; kept for a few days

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0028'
down_revision = '0027'  # report_schedules
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'report_files',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('report', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('format', sa.String(length=8), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('progress_done', sa.Integer(), nullable=False),
        sa.Column('progress_total', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.Column('content', sa.LargeBinary(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=True),
        sa.Column('created_by', sa.String(length=254), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('updated_at', NOW, nullable=False),
        sa.Column('finished_at', NOW, nullable=True),
        sa.Column('expires_at', NOW, nullable=False),
    )
    op.create_index('ix_report_files_company_created', 'report_files', ['company_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_report_files_company_created', 'report_files')
    op.drop_table('report_files')
