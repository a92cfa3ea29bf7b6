"""The ledger: accounts in three units (money, visits, points), append-only entries, points
lots and their draws, statements and the audit. It imports no other area."""

from .book import ALLOWANCE, MONEY_UNITS, OVERDRAFT, POINTS, VISITS, Acct, Book, Lot, Posting, book

__all__ = ["ALLOWANCE", "MONEY_UNITS", "OVERDRAFT", "POINTS", "VISITS", "Acct", "Book", "Lot", "Posting", "book"]
