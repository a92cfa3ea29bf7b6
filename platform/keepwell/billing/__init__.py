"""Billing: members pay for their memberships — billing schedules, invoices numbered without gaps."""
