"""rewards: catalog redemptions and their stock, referral codes and referrals, loyalty status
tiers, points held for a return window

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('points_lots') as t:
        t.add_column(sa.Column('unlocks_on', sa.Date(), nullable=True))
    op.create_index('ix_points_lots_unlocks_on', 'points_lots', ['unlocks_on'])
    op.create_table(
        'reward_redemptions',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('membership_id', sa.String(length=40), nullable=True),
        sa.Column('catalog', sa.String(length=120), nullable=False),
        sa.Column('reward_id', sa.String(length=64), nullable=False),
        sa.Column('reward_name', sa.String(length=120), nullable=False),
        sa.Column('reward_type', sa.String(length=30), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('stock_key', sa.String(length=200), nullable=True),
        sa.Column('event_id', BIG, nullable=False),
        sa.Column('redeemed_on', sa.Date(), nullable=False),
        sa.Column('ship_to', sa.String(length=300), nullable=True),
        sa.Column('tracking', sa.String(length=120), nullable=True),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('updated_at', NOW, nullable=False),
    )
    op.create_index('ix_reward_redemptions_company_status', 'reward_redemptions', ['company_id', 'status'])
    op.create_index('ix_reward_redemptions_customer_reward', 'reward_redemptions', ['customer_id', 'reward_id'])
    op.create_table(
        'reward_stock',
        sa.Column('company_id', BIG, primary_key=True),
        sa.Column('key', sa.String(length=200), primary_key=True),
        sa.Column('taken', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'referral_codes',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'code', name='uq_referral_codes_company_code'),
        sa.UniqueConstraint('company_id', 'customer_id', name='uq_referral_codes_company_customer'),
    )
    op.create_table(
        'referrals',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('referrer_id', sa.String(length=40), nullable=False),
        sa.Column('referee_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('qualifying_event', sa.String(length=40), nullable=False),
        sa.Column('holding_days', sa.Integer(), nullable=False),
        sa.Column('referred_on', sa.Date(), nullable=False),
        sa.Column('qualified_on', sa.Date(), nullable=True),
        sa.Column('reward_on', sa.Date(), nullable=True),
        sa.Column('rewarded_on', sa.Date(), nullable=True),
        sa.UniqueConstraint('company_id', 'referee_id', name='uq_referrals_company_referee'),
    )
    op.create_index('ix_referrals_referrer_id', 'referrals', ['referrer_id'])
    op.create_index('ix_referrals_company_status_reward_on', 'referrals', ['company_id', 'status', 'reward_on'])
    op.create_table(
        'loyalty_status',
        sa.Column('company_id', BIG, primary_key=True),
        sa.Column('customer_id', sa.String(length=40), primary_key=True),
        sa.Column('tier', sa.String(length=64), nullable=False),
        sa.Column('since', sa.Date(), nullable=False),
        sa.Column('ruleset', sa.String(length=120), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('loyalty_status')
    op.drop_index('ix_referrals_company_status_reward_on', 'referrals')
    op.drop_index('ix_referrals_referrer_id', 'referrals')
    op.drop_table('referrals')
    op.drop_table('referral_codes')
    op.drop_table('reward_stock')
    op.drop_index('ix_reward_redemptions_customer_reward', 'reward_redemptions')
    op.drop_index('ix_reward_redemptions_company_status', 'reward_redemptions')
    op.drop_table('reward_redemptions')
    op.drop_index('ix_points_lots_unlocks_on', 'points_lots')
    with op.batch_alter_table('points_lots') as t:
        t.drop_column('unlocks_on')
