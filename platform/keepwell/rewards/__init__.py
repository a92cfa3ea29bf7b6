"""Rewards: points lots with their expiry, the earning rules' effects, redemptions and
adjustments, points expiry as due work."""
