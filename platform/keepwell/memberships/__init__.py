"""Memberships: plan terms, enrolment on a pinned plan version, periods and renewal, the
allowance and its overdraft, included visits, moves between plan versions, due work."""
