"""The rewards' tables: redemptions from the catalog and the stock they took, referral codes and
referrals, and each customer's loyalty status tier."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class Redemption(Base):
    """A reward redeemed: what it cost, the points entry that paid for it (its lot draws say
    which lots), and where its fulfilment stands. Every change of status is an event."""

    __tablename__ = "reward_redemptions"
    __table_args__ = (sa.Index("ix_reward_redemptions_company_status", "company_id", "status"),
                      sa.Index("ix_reward_redemptions_customer_reward", "customer_id", "reward_id"))
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    membership_id: Mapped[str | None] = mapped_column(sa.String(40))  # free services and credits go to one
    catalog: Mapped[str] = mapped_column(sa.String(120))  # the catalog version (id@version) it came from
    reward_id: Mapped[str] = mapped_column(sa.String(64))
    reward_name: Mapped[str] = mapped_column(sa.String(120))
    reward_type: Mapped[str] = mapped_column(sa.String(30))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(20))  # pending|ordered|shipped|delivered|fulfilled|cancelled
    stock_key: Mapped[str | None] = mapped_column(sa.String(200))  # None: the reward has no stock limit
    event_id: Mapped[int] = mapped_column(BigId)  # the redemption event (its points entry names it)
    redeemed_on: Mapped[date] = mapped_column(sa.Date)
    ship_to: Mapped[str | None] = mapped_column(sa.String(300))
    tracking: Mapped[str | None] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class RewardStock(Base):
    """How many of a stocked reward are taken (redeemed and not cancelled): one row per catalog
    and reward, moved by a conditional UPDATE so two redemptions of the last unit cannot both win."""

    __tablename__ = "reward_stock"
    company_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # catalog id:reward id
    taken: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ReferralCode(Base):
    __tablename__ = "referral_codes"
    __table_args__ = (sa.UniqueConstraint("company_id", "code", name="uq_referral_codes_company_code"),
                      sa.UniqueConstraint("company_id", "customer_id", name="uq_referral_codes_company_customer"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    code: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Referral(Base):
    """One person referred by a customer: pending until the referee's qualifying event, then
    qualified until the holding period ends, then rewarded (both sides earn)."""

    __tablename__ = "referrals"
    __table_args__ = (sa.UniqueConstraint("company_id", "referee_id", name="uq_referrals_company_referee"),
                      sa.Index("ix_referrals_company_status_reward_on", "company_id", "status", "reward_on"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    code: Mapped[str] = mapped_column(sa.String(20))
    referrer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    referee_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))  # pending | qualified | rewarded
    qualifying_event: Mapped[str] = mapped_column(sa.String(40))
    holding_days: Mapped[int] = mapped_column(sa.Integer)
    referred_on: Mapped[date] = mapped_column(sa.Date)
    qualified_on: Mapped[date | None] = mapped_column(sa.Date)
    reward_on: Mapped[date | None] = mapped_column(sa.Date)
    rewarded_on: Mapped[date | None] = mapped_column(sa.Date)


class LoyaltyStatus(Base):
    """A customer's loyalty status tier (Silver, Gold...), not a membership plan tier."""

    __tablename__ = "loyalty_status"
    company_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    tier: Mapped[str] = mapped_column(sa.String(64))
    since: Mapped[date] = mapped_column(sa.Date)
    ruleset: Mapped[str] = mapped_column(sa.String(120))  # the rules (id@version) whose tier it is
