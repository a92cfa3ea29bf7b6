"""Keepwell core: rulesets, events, ledgers. Knows nothing of Flask-Admin or RQ."""

__version__ = "0.1.0"
